// The ES-module entry for bundlers: the shim itself is the UMD file beside it.
import Comet from './comet.js';

export default Comet;
export { Comet };
