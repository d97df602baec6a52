/**
 * Assembles the provider profiles olla-ts runs with: the built-ins, overridden or added
 * to by the `*.yaml` files in `proxy.profiles_dir` (a file whose `name` matches a
 * built-in replaces it), then narrowed by `proxy.profile_filter`. A broken file is
 * refused with its path, line, column and the field at fault; nothing starts.
 *
 * @module
 */
import { BUILT_IN_PROFILES } from "./built_in.ts";
import { type Profile, profileFromData, ProfileSet, profileSpec } from "./profile.ts";
import { globFilter } from "../glob.ts";
import { type Issue, ParseContext } from "../schema/spec.ts";
import { readYaml } from "../schema/yaml_source.ts";
import { fromOllaProfile, isOllaProfile } from "./olla_profile.ts";

/** Thrown when a profile file or the resulting set is unusable; one issue per problem. */
export class ProfileError extends TypeError {
  readonly issues: readonly Issue[];

  constructor(issues: readonly Issue[]) {
    super(
      `Cannot load provider profiles: ${issues.length} problem${issues.length === 1 ? "" : "s"}\n` +
        issues.map((issue) =>
          `  - ${issue.location ? `${issue.location}: ` : ""}${
            issue.path ? `${issue.path}: ` : ""
          }${issue.message}`
        )
          .join("\n"),
    );
    this.name = "ProfileError";
    this.issues = issues;
  }
}

/** Options for {@linkcode loadProfiles}. */
export interface LoadProfilesOptions {
  /** `proxy.profiles_dir`; built-ins only when absent. */
  dir: string | undefined;
  include: readonly string[];
  exclude: readonly string[];
  listDir: (path: string) => Promise<string[]>;
  readTextFile: (path: string) => Promise<string>;
}

/**
 * Parses one profile file, in olla-ts's shape or Olla's; problems go to `issues`,
 * warnings (ignored Olla sections) to `warnings`. `builtIns` are the profiles an Olla
 * file of the same name is laid over.
 */
export function parseProfileFile(
  text: string,
  path: string,
  issues: Issue[],
  warnings: Issue[] = issues,
  builtIns: ReadonlyMap<string, Profile> = new Map(),
): Profile | undefined {
  const yaml = readYaml(text, path);
  if (yaml.syntaxErrors.length > 0) {
    issues.push(...yaml.syntaxErrors);
    return undefined;
  }
  const ctx = new ParseContext(() => undefined, yaml.locate);
  if (!yaml.isMapping || yaml.value === undefined) {
    issues.push({
      path: "",
      location: `${path}:1:1`,
      message: "a profile file must hold a mapping",
    });
    return undefined;
  }
  let data: unknown = yaml.value;
  let olla = false;
  if (isOllaProfile(yaml.value)) {
    olla = true;
    const raw = yaml.value as Record<string, unknown>;
    data = fromOllaProfile(raw, builtIns.get(String(raw.name)), ctx);
    // Olla's unknown keys and ignored sections are warnings: Olla itself ignores them.
    warnings.push(
      ...ctx.warnings.map((warning) => ({
        ...warning,
        location: warning.location ?? `${path}:1:1`,
      })),
    );
    ctx.warnings.length = 0;
  }
  const profile = profileFromData(
    profileSpec.parse(data, [], olla ? new ParseContext() : ctx),
    path,
    ctx,
  );
  if (profile.name === "") ctx.error(["name"], "a profile needs a name");
  if (profile.routes.length === 0) ctx.error(["routes"], "a profile needs at least one route");
  for (const warning of ctx.warnings) issues.push(warning);
  if (ctx.errors.length > 0) {
    issues.push(...ctx.errors);
    return undefined;
  }
  return profile;
}

/**
 * Loads the profile set.
 *
 * @throws {ProfileError} listing every problem, with file locations.
 */
export async function loadProfiles(options: LoadProfilesOptions): Promise<ProfileSet> {
  const issues: Issue[] = [];
  const warnings: Issue[] = [];
  const builtIns = new Map(BUILT_IN_PROFILES.map((profile) => [profile.name, profile]));
  const byName = new Map(builtIns);
  if (options.dir !== undefined) {
    let files: string[];
    try {
      files = (await options.listDir(options.dir)).filter((file) => /\.ya?ml$/.test(file));
    } catch (error) {
      throw new ProfileError([{
        path: "proxy.profiles_dir",
        message: `cannot read directory "${options.dir}": ${(error as Error).message}`,
      }]);
    }
    for (const file of files) {
      const path = `${options.dir.replace(/\/+$/, "")}/${file}`;
      const text = await options.readTextFile(path);
      const profile = parseProfileFile(text, path, issues, warnings, builtIns);
      if (profile) byName.set(profile.name, profile);
    }
  }
  // Unknown keys in a profile file are warnings in the config but errors here: a profile
  // is code-like data, and a typo silently changing routing is worse than refusing it.
  const errors = issues;
  const keep = globFilter(options.include, options.exclude);
  const profiles = [...byName.values()].filter((profile) => keep(profile.name));
  const claimed = new Map<string, string>();
  for (const profile of profiles) {
    for (
      const [kind, names] of [["type", [profile.name, ...profile.aliases]], [
        "prefix",
        profile.prefixes,
      ]] as const
    ) {
      for (const name of names) {
        const key = `${kind}:${name}`;
        const other = claimed.get(key);
        if (other !== undefined && other !== profile.name) {
          errors.push({
            path: profile.source,
            message: `${kind} "${name}" is claimed by both "${other}" and "${profile.name}"`,
          });
        }
        claimed.set(key, profile.name);
      }
    }
  }
  if (errors.length > 0) throw new ProfileError(errors);
  return new ProfileSet(profiles, warnings);
}
