/**
 * `deno task image [-- extra build flags]`: builds the single executable and the container
 * image from `Containerfile` with podman or docker, whichever is installed (podman first),
 * tagged `olla-ts:<version>` and `olla-ts:latest`. Extra arguments go to the build
 * (CI passes `--pull=never`: its base image is made locally).
 *
 * @module
 */
// deno-lint-ignore-file no-console
import pkg from "../package.json" with { type: "json" };

async function installed(tool: string): Promise<boolean> {
  try {
    return (await new Deno.Command(tool, { args: ["--version"], stdout: "null", stderr: "null" })
      .output()).success;
  } catch {
    return false;
  }
}

async function run(command: string, args: string[]): Promise<void> {
  const { code } = await new Deno.Command(command, { args, stdout: "inherit", stderr: "inherit" })
    .spawn().status;
  if (code !== 0) {
    console.error(`${command} ${args.join(" ")} failed (exit ${code})`);
    Deno.exit(code);
  }
}

const tool = (await installed("podman")) ? "podman" : (await installed("docker")) ? "docker" : "";
if (!tool) {
  console.error("Neither podman nor docker is installed: install one to build the image");
  Deno.exit(1);
}
await run(Deno.execPath(), ["task", "build"]);
await run(tool, [
  "build",
  // podman writes OCI images by default, which drop HEALTHCHECK; docker's format keeps it.
  ...(tool === "podman" ? ["--format", "docker"] : []),
  "-f",
  "Containerfile",
  "-t",
  `olla-ts:${pkg.version}`,
  "-t",
  "olla-ts:latest",
  ...Deno.args,
  ".",
]);
console.log(`built olla-ts:${pkg.version} with ${tool}`);
