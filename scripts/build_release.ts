/**
 * `deno task build:release`: the single executable for every platform olla-ts ships to,
 * cross-compiled by `bun build --compile --target=...` (Bun fetches each target's runtime
 * from the npm registry), into dist/release/ with a `SHA256SUMS` file in `sha256sum`'s
 * format (`sha256sum -c SHA256SUMS` checks a download).
 *
 * @module
 */
// deno-lint-ignore-file no-console

/** Bun's target name and the file name it is released under. */
export const RELEASE_TARGETS: readonly { target: string; file: string }[] = [
  { target: "bun-linux-x64", file: "olla-ts-linux-x64" },
  { target: "bun-linux-arm64", file: "olla-ts-linux-arm64" },
  { target: "bun-darwin-x64", file: "olla-ts-darwin-x64" },
  { target: "bun-darwin-arm64", file: "olla-ts-darwin-arm64" },
  { target: "bun-windows-x64", file: "olla-ts-windows-x64.exe" },
];

const OUT = "dist/release";

async function sha256(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

await Deno.mkdir(OUT, { recursive: true });
const sums: string[] = [];
for (const { target, file } of RELEASE_TARGETS) {
  console.log(`building ${file} (${target})`);
  const { code } = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "scripts/bun.ts",
      "build",
      "--compile",
      "--minify",
      `--target=${target}`,
      "main.ts",
      "--outfile",
      `${OUT}/${file}`,
    ],
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  if (code !== 0) {
    console.error(`building ${file} failed (exit ${code})`);
    Deno.exit(1);
  }
  sums.push(`${await sha256(`${OUT}/${file}`)}  ${file}`);
}
await Deno.writeTextFile(`${OUT}/SHA256SUMS`, `${sums.join("\n")}\n`);
console.log(`${OUT}/SHA256SUMS:\n${sums.join("\n")}`);
