/**
 * The `translators:` section: Olla's Anthropic Messages API translator, with Olla's key
 * names, defaults and environment variables.
 *
 * @module
 */
import { obj } from "../schema/composites.ts";
import { bool, num, str } from "../schema/scalars.ts";

/** Olla's default and cap for `max_message_size`. */
export const DEFAULT_MESSAGE_BYTES = 10 * 1024 * 1024;
export const MAX_MESSAGE_BYTES = 100 * 1024 * 1024;

/** The `translators:` section. */
export const translatorsSpec = obj({
  anthropic: obj({
    enabled: bool({
      default: true,
      env: "OLLA_TRANSLATORS_ANTHROPIC_ENABLED",
      doc: "serve the Anthropic Messages API under /olla/anthropic/",
    }),
    passthrough_enabled: bool({
      default: true,
      env: "OLLA_TRANSLATORS_ANTHROPIC_PASSTHROUGH_ENABLED",
      doc:
        "send Messages requests unchanged to engines that serve them natively; false translates all",
    }),
    max_message_size: num({
      default: DEFAULT_MESSAGE_BYTES,
      max: MAX_MESSAGE_BYTES,
      env: "OLLA_TRANSLATORS_ANTHROPIC_MAX_MESSAGE_SIZE",
      doc: "largest Messages request body in bytes (0 or less means 10 MiB); larger is a 413",
    }),
    inspector: obj({
      enabled: bool({
        default: false,
        doc: "write each Messages request (and translated response) to JSONL files, for " +
          "debugging; bodies may hold secrets",
      }),
      output_dir: str({
        default: "logs/inspector/anthropic",
        doc: "where the inspector writes (<dir>/<date>/<session>.jsonl; empty: ./inspector-logs)",
      }),
      session_header: str({
        default: "X-Session-ID",
        doc: "header naming the inspector's session",
      }),
    }),
  }),
});
