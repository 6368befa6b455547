#!/usr/bin/env node
// unicloud-run: node js/unicloud/run.js path/to/index.js --event '{...}' [--appid ID] [--url URL]
//
// stdout carries only the result (JSON); the function's console output goes to stderr.

import { Console } from "node:console";
import process from "node:process";

import {
  USAGE,
  UsageError,
  VERSION,
  entryFile,
  loadMain,
  makeContext,
  makeUniCloud,
  parseCommandLine,
} from "./runner.js";

const stdout = process.stdout;

function fail(code, message) {
  process.stderr.write(`unicloud-run: ${message}\n`);
  process.exitCode = code;
}

/** What the function threw, with uniCloud's errCode / errMsg when the error has them. */
function describe(exc) {
  if (!(exc instanceof Error)) return `threw a non-Error: ${JSON.stringify(exc)}`;
  const code = exc.errCode !== undefined ? ` [errCode ${JSON.stringify(exc.errCode)}]` : "";
  return `the function threw ${exc.stack ?? `${exc.name}: ${exc.message}`}${code}`;
}

async function run(argv) {
  let args;
  try {
    args = parseCommandLine(argv);
  } catch (exc) {
    if (exc instanceof UsageError) return fail(2, `${exc.message}\n${USAGE}`);
    throw exc;
  }
  if (args.help) return void stdout.write(`${USAGE}\n`);
  if (args.version) return void stdout.write(`${VERSION}\n`);
  let main;
  let context;
  try {
    const file = entryFile(args.file);
    globalThis.uniCloud = makeUniCloud(args.url ? { url: args.url } : {});
    globalThis.console = new Console({ stdout: process.stderr, stderr: process.stderr });
    main = loadMain(file);
    context = makeContext(file, args);
  } catch (exc) {
    if (exc instanceof UsageError) return fail(2, exc.message);
    if (exc instanceof TypeError && /^(url|secret|timeout):/.test(exc.message)) {
      return fail(2, exc.message); // a bad --url or environment variable
    }
    return fail(1, describe(exc));
  }
  let result;
  try {
    result = await main(args.event, context);
  } catch (exc) {
    return fail(1, describe(exc));
  }
  let text;
  try {
    text = JSON.stringify(result === undefined ? null : result, null, 2);
  } catch (exc) {
    return fail(1, `the function's result is not JSON (${exc.message})`);
  }
  await new Promise((resolve) => stdout.write(`${text}\n`, resolve));
}

run(process.argv.slice(2)).then(
  // A cloud function's instance ends with its answer: timers or sockets it left open
  // (fetch's keep-alive too) must not keep the run going.
  () => process.exit(),
  (exc) => {
    process.stderr.write(`unicloud-run: internal error: ${exc?.stack ?? exc}\n`);
    process.exit(1);
  },
);
