// Real processes for the uniCloud shim's tests: a unipush-bridge gateway on a loopback
// port of its own choosing (port 0, read back from its log), a daemon registered with it,
// and `listen --json` on the daemon; each in a temp dir, stopped by signal at the end.
// The CLI is $UNIPUSH_BRIDGE_CLI, else the checkout's .venv/bin/unipush-bridge, else the
// one on PATH; when there is none the tests skip, and fail under CI (CI=true).

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const JS_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const REPO = path.resolve(JS_ROOT, "..");
export const RUN_JS = path.join(JS_ROOT, "unicloud", "run.js");
export const EXAMPLES = path.join(JS_ROOT, "examples", "unicloud");
export const SECRET = "unicloud-test-secret-0123456789";

/** The unipush-bridge command, or null with the reason in `missingCli`. */
export function findCli() {
  const candidates = [
    process.env.UNIPUSH_BRIDGE_CLI,
    path.join(REPO, ".venv", "bin", "unipush-bridge"),
  ].filter(Boolean);
  for (const c of candidates) if (existsSync(c)) return c;
  const which = spawnSync("sh", ["-c", "command -v unipush-bridge"], { encoding: "utf8" });
  return which.status === 0 ? which.stdout.trim() : null;
}

export const CLI = findCli();

/** Options for node:test's describe/test: skip without the CLI, except under CI where
 * a missing CLI must fail the run (as tests/notifstack.py's require_tools does). */
export function needsCli() {
  if (CLI || process.env.CI) return {};
  return { skip: "no unipush-bridge command (set UNIPUSH_BRIDGE_CLI or run scripts/dev.sh test)" };
}

/** The environment for our processes: no UNIPUSH_BRIDGE_* of the caller's. */
export function cleanEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith("UNIPUSH_BRIDGE_") && !k.startsWith("NOTIFY_")) env[k] = v;
  }
  return { ...env, ...extra };
}

async function until(check, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

class Proc {
  constructor(args, dir, name, env) {
    if (!CLI) throw new Error("no unipush-bridge command: set UNIPUSH_BRIDGE_CLI or create .venv");
    this.out = "";
    this.err = "";
    this.name = name;
    this.child = spawn(CLI, args, { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
    this.child.stdout.setEncoding("utf8").on("data", (d) => (this.out += d));
    this.child.stderr.setEncoding("utf8").on("data", (d) => (this.err += d));
    this.exited = new Promise((resolve) => this.child.on("exit", resolve));
    this.child.on("exit", () => (this.dead = true));
  }

  alive(what) {
    if (this.dead) throw new Error(`${this.name} exited while waiting for ${what}: ${this.err.slice(-2000)}`);
  }

  async stop() {
    if (!this.dead) this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** A gateway process; `secret` sets its server_secret (every API call needs it then). */
export async function startGateway(dir, { secret } = {}) {
  const env = cleanEnv(secret ? { UNIPUSH_BRIDGE_GATEWAY_SERVER_SECRET: secret } : {});
  const args = ["gateway", "--host", "127.0.0.1", "--port", "0", "--data-dir", path.join(dir, "gw"), "--log-format", "json"];
  const proc = new Proc(args, dir, "gateway", env);
  const port = await until(
    () => {
      proc.alive("its port");
      for (const line of proc.err.split("\n")) {
        try {
          const entry = JSON.parse(line);
          if (entry.event === "gateway listening") return entry.port;
        } catch {
          // not a whole JSON line yet
        }
      }
      return null;
    },
    15000,
    "the gateway to listen",
  );
  proc.port = port;
  proc.url = `http://127.0.0.1:${port}`;
  return proc;
}

/** A daemon for `appid` on the gateway, with its cid, and `listen --json` on it (so
 * pushes arrive as receive events, read with `daemon.events()`). */
export async function startDaemon(dir, gateway, appid) {
  const sock = path.join(dir, `${appid}.sock`);
  const args = [
    "run", "--gateway", `ws://127.0.0.1:${gateway.port}`, "--appid", appid,
    "--state-dir", path.join(dir, `state-${appid}`), "--socket", sock, "--log-format", "json",
  ];
  const proc = new Proc(args, dir, `daemon ${appid}`, cleanEnv());
  proc.cid = await until(
    () => {
      proc.alive("its cid");
      return /^cid: ([0-9a-f]{32})$/m.exec(proc.out)?.[1];
    },
    15000,
    "the daemon's cid",
  );
  proc.socket = sock;
  const listener = new Proc(["listen", "--json", "--socket", sock], dir, "listener", cleanEnv());
  await until(() => {
    listener.alive("subscription");
    const st = spawnSync(CLI, ["status", "--json", "--socket", sock], { encoding: "utf8", env: cleanEnv() });
    return st.status === 0 && JSON.parse(st.stdout).listeners === 1;
  }, 15000, "the listener to subscribe");
  proc.listener = listener;
  proc.events = () =>
    listener.out.split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
  proc.waitEvents = (n, ms = 10000) =>
    until(() => proc.events().length >= n && proc.events(), ms, `${n} events on the listener`);
  const stop = proc.stop.bind(proc);
  proc.stop = async () => {
    await listener.stop();
    await stop();
  };
  return proc;
}

/** A temp dir and the processes started in it, all stopped and removed by `close()`. */
export function stackDir() {
  const dir = mkdtempSync(path.join(tmpdir(), "unicloud-test-"));
  const procs = [];
  return {
    dir,
    async gateway(opts) {
      const p = await startGateway(dir, opts);
      procs.push(p);
      return p;
    },
    async daemon(gateway, appid) {
      const p = await startDaemon(dir, gateway, appid);
      procs.unshift(p);
      return p;
    },
    async close() {
      for (const p of procs) await p.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A loopback port where nothing listens (bound, then closed). */
export async function deadPort() {
  const srv = createServer();
  await new Promise((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address();
  await new Promise((r) => srv.close(r));
  return port;
}

/** unicloud-run as a real process: {status, stdout, stderr, json}. */
export function runFunction(args, env = {}) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [RUN_JS, ...args], { env: cleanEnv(env) });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
    child.on("exit", (status) => {
      let json;
      try {
        json = JSON.parse(stdout);
      } catch {
        json = undefined;
      }
      resolve({ status, stdout, stderr, json });
    });
  });
}

export function readExample(name) {
  return readFileSync(path.join(EXAMPLES, name, "index.js"), "utf8");
}
