// Type declarations of comet.mjs: the class of comet.d.ts, as its default and a named export.
import Comet from './comet.js';

export default Comet;
export { Comet };
