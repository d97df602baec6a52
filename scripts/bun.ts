/**
 * Runs Bun with the given arguments: the `bun` on PATH when there is one, otherwise the
 * version pinned in package.json (`config.bun`) through `npx`, so a machine with only
 * Node.js and npm can run the Bun half of the test suite and build the single executable.
 *
 * @module
 */
import pkg from "../package.json" with { type: "json" };

async function bunOnPath(): Promise<boolean> {
  try {
    const { success } = await new Deno.Command("bun", { args: ["--version"], stdout: "null" })
      .output();
    return success;
  } catch {
    return false;
  }
}

const [command, prefix] = await bunOnPath()
  ? ["bun", []]
  : ["npx", ["-y", `bun@${pkg.config.bun}`]];
const child = new Deno.Command(command, {
  args: [...prefix, ...Deno.args],
  stdin: "inherit",
  stdout: "inherit",
  stderr: "inherit",
}).spawn();
const { code } = await child.status;
Deno.exit(code);
