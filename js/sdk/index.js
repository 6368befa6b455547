// ES module entry: the SDK file sets globalThis.UniPushBridge (it has no export
// statements so a plain <script> tag loads it too); this re-exports it. The daemon
// serves this file as /sdk.mjs beside /unipush-bridge.js, so
//   import { install } from "http://127.0.0.1:8790/sdk.mjs";
// works, and the endpoint's URL is then known from where the module came from.
import "./unipush-bridge.js";

const bridge = globalThis.UniPushBridge;
if (!bridge.defaultUrl) bridge.defaultUrl = bridge.protocol.endpointOf(import.meta.url);
export const install = bridge.install;
export const protocol = bridge.protocol;
export const settle = bridge.settle;
export default bridge;
