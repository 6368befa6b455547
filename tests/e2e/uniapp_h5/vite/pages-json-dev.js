// What uni-h5-vite's pages.json module puts first in main.js under `vite` (dev) and in
// a build with h5.optimization.treeShaking.enable false (packages/uni-h5-vite/src/
// plugins/pagesJson.ts registerGlobalCode; main.js gets `import './pages.json.js'`
// from src/plugins/mainJs.ts): the global uni is uni-h5's api object, replacing any
// window.uni a script in index.html made before.
import { uni, upx2px } from "./uni-h5.js";
window.wx = uni;
window.uni = uni;
window.rpx2px = upx2px;
