// ES module entry: the SDK file sets globalThis.UniPushBridge (it has no export
// statements so a plain <script> tag loads it too); this re-exports it.
import "./unipush-bridge.js";

const bridge = globalThis.UniPushBridge;
export const install = bridge.install;
export const protocol = bridge.protocol;
export const settle = bridge.settle;
export default bridge;
