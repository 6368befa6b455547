// The parts of unicloud-run (run.js): arguments, loading a cloud function, its context.
// Kept apart from run.js so that importing them runs nothing.

import { randomUUID } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { parseArgs } from "node:util";

import { DEFAULT_APPID, ENV, createUniCloud } from "./index.js";

/** The package's version, from its package.json (one place). */
export const VERSION = JSON.parse(
  readFileSync(new URL("../package.json", import.meta.url), "utf8"),
).version;

export const USAGE = `usage: unicloud-run FUNCTION [--event JSON] [--appid ID] [--url URL] [--platform P]

Runs a uniCloud cloud function (its index.js, or its directory) unchanged against a
unipush-bridge gateway: exports.main(event, context) is called with the event, the
uniCloud global gives getPushManager({appId}), and the result is printed as JSON.

  --event JSON     the event (default {}), as uniCloud.callFunction's data
  --appid ID       context.APPID (default $${ENV.appId} or ${DEFAULT_APPID})
  --url URL        the gateway's base HTTP URL (default $${ENV.url} or http://127.0.0.1:8787)
  --platform P     context.PLATFORM (default web)
The server secret comes from $${ENV.secret}.
Exit codes: 0 ok, 1 the function threw or rejected, 2 bad usage.`;

/** Bad usage: the message names the argument and the rule; exit code 2. */
export class UsageError extends Error {
  constructor(message) {
    super(message);
    this.name = "UsageError";
  }
}

export function parseCommandLine(argv) {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        event: { type: "string" },
        appid: { type: "string" },
        url: { type: "string" },
        platform: { type: "string" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean" },
      },
    });
  } catch (exc) {
    throw new UsageError(exc.message);
  }
  const { values, positionals } = parsed;
  if (values.help || values.version) return { help: values.help, version: values.version };
  if (positionals.length !== 1) {
    throw new UsageError(
      positionals.length === 0
        ? "FUNCTION: give the cloud function's index.js or its directory"
        : `FUNCTION: one cloud function at a time, got ${positionals.length}: ${positionals.join(" ")}`,
    );
  }
  let event = {};
  if (values.event !== undefined) {
    try {
      event = JSON.parse(values.event);
    } catch (exc) {
      throw new UsageError(`--event: not JSON (${exc.message}): ${values.event}`);
    }
  }
  for (const key of ["appid", "url", "platform"]) {
    if (values[key] !== undefined && values[key] === "") {
      throw new UsageError(`--${key}: must not be empty`);
    }
  }
  return {
    file: positionals[0],
    event,
    appid: values.appid,
    url: values.url,
    platform: values.platform,
  };
}

/** The function's entry file: the file given, or a directory's index.js, as uniCloud
 * runs a cloud function directory. */
export function entryFile(given) {
  const full = path.resolve(given);
  let stat;
  try {
    stat = statSync(full);
  } catch {
    throw new UsageError(`FUNCTION: ${given} does not exist`);
  }
  if (stat.isDirectory()) {
    const index = path.join(full, "index.js");
    try {
      statSync(index);
    } catch {
      throw new UsageError(
        `FUNCTION: ${given} is a directory without index.js (a cloud function's entry file)`,
      );
    }
    return index;
  }
  return full;
}

/** exports.main of a CommonJS cloud function, loaded with its own require (so its
 * require('./util') and node_modules resolve from its directory). */
export function loadMain(file) {
  const esm = esModuleReason(file);
  if (esm) {
    throw new UsageError(
      `FUNCTION: ${file} is loaded as an ES module (${esm}); cloud functions are ` +
        "CommonJS: put the function's own package.json beside it, as uniCloud function " +
        "directories have",
    );
  }
  const mod = createRequire(file)(file); // a throw at load time is the function's own
  const main = mod?.main;
  if (typeof main !== "function") {
    const has = mod && typeof mod === "object" ? Object.keys(mod) : [];
    throw new UsageError(
      `FUNCTION: ${file} has no exports.main function ` +
        `(exports: ${has.length ? has.join(", ") : "none"}); a cloud function is ` +
        "exports.main = async (event, context) => { ... }",
    );
  }
  return main;
}

/** Why Node would load this file as an ES module (where exports.main fails with a bare
 * "exports is not defined"), or null: a .mjs name, or a .js under a package.json that
 * says "type": "module", the nearest package.json deciding, as Node decides. */
export function esModuleReason(file) {
  if (file.endsWith(".mjs")) return "its name ends in .mjs";
  if (!file.endsWith(".js")) return null;
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, "package.json");
    let text = null;
    try {
      text = readFileSync(pkg, "utf8");
    } catch {
      // no package.json here: look further up
    }
    if (text !== null) {
      let type;
      try {
        type = JSON.parse(text).type;
      } catch {
        return null; // Node's own error on loading says what is wrong with it
      }
      return type === "module" ? `${pkg} says "type": "module"` : null;
    }
    if (path.dirname(dir) === dir) return null;
  }
}

/** The context fields uniCloud gives a cloud function (its cf-callfunction docs);
 * values describe this machine and this run. */
export function makeContext(file, { appid, platform } = {}, env = process.env) {
  const os = { linux: "linux", darwin: "mac", win32: "windows" }[process.platform];
  const lang = (env.LC_ALL || env.LC_MESSAGES || env.LANG || "en").split(/[._@]/)[0];
  return {
    APPID: appid ?? env[ENV.appId] ?? DEFAULT_APPID,
    PLATFORM: platform ?? "web",
    OS: os ?? process.platform,
    SOURCE: "client",
    CLIENTIP: "127.0.0.1",
    CLIENTUA: `unicloud-run/${VERSION} node/${process.versions.node}`,
    LOCALE: lang === "C" || lang === "POSIX" ? "en" : lang.replace("_", "-"),
    DEVICEID: "",
    FUNCTION_NAME: path.basename(path.dirname(file)),
    FUNCTION_TYPE: "cloudfunction",
    RUNTIME_ENV: "local",
    SPACEINFO: { provider: "unipush-bridge", spaceId: "local" },
    requestId: randomUUID(),
  };
}

/** The uniCloud global: getPushManager against the gateway; any other uniCloud API
 * (database, callFunction, ...) fails when called, naming itself, instead of a bare
 * "is not a function". */
export function makeUniCloud(options) {
  const real = {
    ...createUniCloud(options),
    logger: {
      log: (...a) => console.log(...a),
      info: (...a) => console.info(...a),
      warn: (...a) => console.warn(...a),
      error: (...a) => console.error(...a),
    },
  };
  return new Proxy(real, {
    get(target, key) {
      if (key in target || typeof key === "symbol" || key === "then" || key === "toJSON") {
        return target[key];
      }
      return () => {
        throw new Error(
          `uniCloud.${key} is not provided by unicloud-run: only getPushManager (against ` +
            "the unipush-bridge gateway) and logger are",
        );
      };
    },
  });
}
