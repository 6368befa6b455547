// uniCloud's push manager for Node, against a unipush-bridge gateway.
//
//   import { uniCloud } from "unipush-bridge-js/unicloud";
//   const push = uniCloud.getPushManager({ appId: "__UNI__DESKTOP" });
//   const res = await push.sendMessage({ push_clientid: cid, title, content, payload });
//   if (res.errCode === 0) ...
//
// The JavaScript twin of daemon/unipush_bridge/clients/pushmanager.py: the same methods,
// the same environment variables, the same error handling. A failed call RESOLVES with
// uni's {errCode, errMsg, data}, as uniCloud's push manager does (docs/unicloud.md says
// where that comes from); only a gateway that cannot be reached, or a URL where something
// else answers, REJECTS (with a GatewayUnreachable carrying errCode and errMsg, the shape
// uniCloud gives the errors it throws). No dependencies: Node's global fetch.

/** uniCloud.getPushManager's methods that the gateway serves (its /openapi.json). */
export const SERVED_METHODS = Object.freeze([
  "sendMessage",
  "cidBindAlias",
  "getAliasByCid",
  "getCidByAlias",
  "unboundAlias",
  "unboundAllAlias",
  "cidBindCustomTags",
  "cidsBindCustomTag",
  "cidsUnboundCustomTag",
  "searchCustomTagByCid",
  "getClientStatusByCid",
  "getClientDetailByCid",
  "getReport",
  "getReportByGroupName",
  "getTodayReport",
  "getReportByDate",
  "bindUniIdDevice",
]);

/** uniCloud's methods that mean nothing for a desktop gateway: present, so code that
 * calls them runs, and answered by the gateway with errCode uni-cloud-push-error-400
 * "... is not supported by this gateway: <why>" (gateway/methods.py NOT_SUPPORTED). */
export const UNSUPPORTED_METHODS = Object.freeze([
  "stopTaskByTaskid",
  "getTaskScheduleByTaskid",
  "deleteTaskScheduleByTaskid",
  "getTaskDetail",
  "addCidToBlacklist",
  "removeCidInBlacklist",
  "getDeviceStatusByCid",
  "getClientCount",
  "setBadgeByCid",
  "getReportDetailByTaskid",
  "getClientReportByDate",
  "getTodayOnlineClientReport",
  "getAdminUrl",
]);

export const DEFAULT_URL = "http://127.0.0.1:8787";
export const DEFAULT_APPID = "__UNI__DESKTOP";
export const DEFAULT_TIMEOUT_MS = 10_000;

/** The variables the Python client and the CLI's `send` read. */
export const ENV = Object.freeze({
  url: "UNIPUSH_BRIDGE_SEND_URL",
  secret: "UNIPUSH_BRIDGE_GATEWAY_SERVER_SECRET",
  appId: "UNIPUSH_BRIDGE_APPID",
});

/** The gateway did not answer, or what answered is not a unipush-bridge gateway. */
export class GatewayUnreachable extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = "GatewayUnreachable";
    this.errCode = "unipush-bridge-gateway-unreachable";
    this.errMsg = message;
  }
}

/** Options win over the environment, the environment over the defaults; checked here
 * so a typo fails at getPushManager, naming the option, not at the first call. */
export function resolveOptions(options = {}, env = process.env) {
  if (options === null || typeof options !== "object") {
    throw new TypeError(`createUniCloud options: must be an object, got ${typeof options}`);
  }
  const url = String(options.url ?? env[ENV.url] ?? DEFAULT_URL).replace(/\/+$/, "");
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(
      `url: ${JSON.stringify(url)} is not a URL; give the gateway's base URL, such as ${DEFAULT_URL}`,
    );
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new TypeError(
      `url: ${JSON.stringify(url)} must be http:// or https:// (the gateway's HTTP API, not its websocket)`,
    );
  }
  const secret = options.secret ?? env[ENV.secret] ?? null;
  if (secret !== null && (typeof secret !== "string" || secret === "")) {
    throw new TypeError("secret: must be a non-empty string (the gateway's server_secret)");
  }
  const timeout = options.timeout ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isFinite(timeout) || timeout <= 0) {
    throw new TypeError(`timeout: must be a positive number of milliseconds, got ${timeout}`);
  }
  return { url, secret, timeout, fetch: options.fetch ?? globalThis.fetch };
}

/** The gateway's answer, or GatewayUnreachable naming the URL and the HTTP status when
 * what answered is not a unipush-bridge gateway: every answer of the gateway, failures
 * too, is uni's {errCode, errMsg, data} envelope (pushmanager.read_envelope). */
export function readEnvelope(endpoint, status, contentType, text) {
  let answer = null;
  try {
    answer = JSON.parse(text);
  } catch {
    answer = null;
  }
  if (answer && typeof answer === "object" && "errCode" in answer && "errMsg" in answer) {
    return answer;
  }
  const what = text ? `${Buffer.byteLength(text)} bytes of ${contentType}` : "an empty body";
  throw new GatewayUnreachable(
    `${endpoint} answered HTTP ${status} with ${what}, not a uni envelope ` +
      "{errCode, errMsg, data}: this is not a unipush-bridge gateway (check the url; " +
      `give the gateway's base URL, such as ${DEFAULT_URL})`,
  );
}

/** One push manager per appId, as uniCloud.getPushManager({appId}) returns. */
export class PushManager {
  constructor(appId, options = {}) {
    if (typeof appId !== "string" || appId === "") {
      throw new TypeError("getPushManager: appId must be a non-empty string, such as __UNI__DESKTOP");
    }
    this.appId = appId;
    const o = resolveOptions(options);
    this.url = o.url;
    this._secret = o.secret;
    this._timeout = o.timeout;
    this._fetch = o.fetch;
  }

  /** POST /api/{appId}/{method} with the argument as the JSON body (none when absent). */
  async call(method, arg) {
    const endpoint = `${this.url}/api/${encodeURIComponent(this.appId)}/${encodeURIComponent(method)}`;
    const headers = { Accept: "application/json" };
    if (this._secret) headers.Authorization = `Bearer ${this._secret}`;
    const init = { method: "POST", headers, signal: AbortSignal.timeout(this._timeout) };
    if (arg !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(arg);
    }
    let resp;
    let text;
    try {
      resp = await this._fetch(endpoint, init);
      text = await resp.text();
    } catch (exc) {
      const why =
        exc?.name === "TimeoutError"
          ? `no answer within ${this._timeout} ms`
          : (exc?.cause?.code ?? exc?.cause?.message ?? exc?.message ?? String(exc));
      throw new GatewayUnreachable(`cannot reach the gateway at ${this.url}: ${why}`, { cause: exc });
    }
    return readEnvelope(endpoint, resp.status, resp.headers.get("content-type"), text);
  }
}

for (const name of [...SERVED_METHODS, ...UNSUPPORTED_METHODS]) {
  Object.defineProperty(PushManager.prototype, name, {
    value: {
      [name](arg) {
        return this.call(name, arg);
      },
    }[name],
    writable: true,
    configurable: true,
  });
}

/** A uniCloud object with getPushManager; options (url, secret, timeout, fetch) apply
 * to every push manager it makes and win over the environment. */
export function createUniCloud(options = {}) {
  resolveOptions(options); // fail early on a bad option
  return {
    getPushManager(arg) {
      if (!arg || typeof arg !== "object" || typeof arg.appId !== "string" || !arg.appId) {
        throw new TypeError(
          "getPushManager: needs {appId}, the client app's appId such as __UNI__DESKTOP",
        );
      }
      // uniCloud takes other keys (getRequestBody in DCloud's own sample): ignored here.
      return new PushManager(arg.appId, options);
    },
  };
}

/** uniCloud with the URL and secret from the environment (read at each getPushManager). */
export const uniCloud = {
  getPushManager(arg) {
    return createUniCloud().getPushManager(arg);
  },
};

export default uniCloud;
