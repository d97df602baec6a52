/**
 * olla-ts's name and version, read from package.json so there is one place to bump.
 *
 * @module
 */
import pkg from "../package.json" with { type: "json" };

export const NAME = "olla-ts";
export const VERSION: string = pkg.version;
