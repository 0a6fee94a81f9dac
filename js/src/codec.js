// codec: frames and batches of PROTOCOL.md section 4.
//
// A frame is handled as the array it is on the wire: [type, field...].
// Text travels as JavaScript strings: a browser has decoded the UTF-8 of
// every WebSocket message, event and response before the shim sees it, so
// the codec works on UTF-16 and checks what UTF-16 can get wrong (lone
// surrogates). Binary payloads stay base64 strings until delivery, or
// arrive raw, in binary WebSocket messages of their own, where negotiate
// agreed to that.

// From other files: parseJSON (env).

// SCHEMA gives the fields of each frame type a client receives (the
// upstream-only key, probe and commit frames are malformed downstream): n
// an unsigned integer, s a string (for b, a base64 one).
var SCHEMA = { o: 'nnsn', m: 'ns', b: 'ns', a: 'n', h: '', e: 's', s: '', c: 'nnsn', t: 's' };

var MAX_SAFE = 9007199254740991;

var BASE64 = /^([A-Za-z\d+\/]{4})*([A-Za-z\d+\/]{2}==|[A-Za-z\d+\/]{3}=)?$/;

// quote returns s as a JSON string literal escaped as the Go encoder does:
// \n \r \t in short form, the other control characters as \u00XX (so not
// \b and \f), and U+2028/U+2029, which end lines in JavaScript and would
// split an SSE data line.
function quote(s) {
  // Escapes come in pairs (\x) or as \uXXXX; matching each backslash with
  // the character after it keeps an escaped backslash whole.
  return JSON.stringify(s).replace(/\\([\s\S])|[\u2028\u2029]/g, function (m, c) {
    return c ? c == 'b' ? '\\u0008' : c == 'f' ? '\\u000c' : m : '\\u' + m.charCodeAt(0).toString(16);
  });
}

// encodeFrame returns the wire form of frame f, without a newline: its
// strings quoted, its numbers as they are.
function encodeFrame(f) {
  return '[' + f.map(function (v) {
    return typeof v == 'string' ? quote(v) : v;
  }) + ']';
}

// codecError is a decoding failure; code is the close code it stands for:
// 1002 for a malformed frame, 1007 for text that is not valid Unicode.
function codecError(code) {
  var e = new Error(code == 1007 ? 'invalid UTF-8' : 'malformed frame');
  e.code = code;
  return e;
}

// FRAME is the grammar of a frame as strictly as the Go decoder reads it,
// once JSON.parse has checked every string and number and each string is
// blanked to "": unsigned integers, spaces and tabs between tokens,
// nothing else.
var FRAME = /^[ \t]*\[[ \t]*""([ \t]*,[ \t]*(""|\d+))*[ \t]*\][ \t]*$/;

// decodeFrame decodes one frame, as strictly as the Go decoder: the
// grammar, then each type's fields (PROTOCOL.md section 4). It throws a
// codecError.
function decodeFrame(line) {
  var f = parseJSON(line), t = f && f[0], kinds;
  // The grammar leaves strings and unsigned integers only: the fields'
  // kinds, n for a safe integer, x for a larger one, must be the type's.
  // Inherited names (toString, __proto__) are not strings: refused too.
  // The type is looked up only once the grammar has made it a string: a
  // lookup converts its key to a string first, and a deeply nested array
  // converts recursively, past the end of the stack.
  // Only a line JSON.parse accepted is blanked: in one with an unclosed
  // string, the blanking would restart at every escaped quote and scan
  // to the end each time, quadratic in the line's length.
  if (!f || !FRAME.test(line.replace(/"([^"\\]|\\.)*"/g, '""')) || typeof (kinds = SCHEMA[t]) != 'string' || f.map(function (v) {
    return typeof v == 'string' ? 's' : v > MAX_SAFE ? 'x' : 'n';
  }).join('') != 's' + kinds || /[mbc]/.test(t) && !f[1] || t == 'c' && f[2] > 4999 ||
    t == 'b' && !BASE64.test(f[2])) {
    throw codecError(1002);
  }
  // Frames hold one string besides the type, so joining them cannot pair
  // two lone surrogates.
  if (hasLoneSurrogate(f.join(''))) throw codecError(1007);
  return f;
}

// decodeBatch decodes the frames of a batch: lines ended by \n (the last
// one optional), skipping padding lines of spaces only; each with decode
// where given (comet-topics.js's), else decodeFrame.
function decodeBatch(text, decode) {
  return text.split('\n').filter(function (line) {
    return /[^ ]/.test(line);
  }).map(decode || decodeFrame);
}

// utf8Length counts the UTF-8 bytes of s, the unit of maxMessage; a lone
// surrogate, which has no UTF-8 form, makes it Infinity.
function utf8Length(s) {
  try {
    return encodeURIComponent(s).replace(/%../g, '.').length;
  } catch (e) {
    return 1 / 0;
  }
}

// hasLoneSurrogate reports whether s holds a lone surrogate: the server
// would refuse it and close the session with 1007.
function hasLoneSurrogate(s) {
  return utf8Length(s) == 1 / 0;
}

// toBase64 encodes bytes (a Uint8Array) as padded base64, with btoa.
function toBase64(bytes, btoa) {
  for (var s = '', i = 0; i < bytes.length; i += 8192) {
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
  }
  return btoa(s);
}

// RAW is the header line of a raw binary message (PROTOCOL.md section 4),
// in its one form: no whitespace, no leading zero.
var RAW = /^\["r",([1-9]\d*)\]$/;

// encodeRaw returns the raw binary WebSocket message of message seq
// holding bytes (a Uint8Array): the ASCII header, \n, the bytes.
function encodeRaw(seq, bytes, U8) {
  var h = '["r",' + seq + ']\n', out = new U8(h.length + bytes.length), i;
  for (i = 0; i < h.length; i++) out[i] = h.charCodeAt(i);
  out.set(bytes, h.length);
  return out;
}

// decodeRaw decodes a raw binary WebSocket message (an ArrayBuffer) into
// the frame ['b', seq, payload], the payload an ArrayBuffer of its own. A
// header that is not ["r",seq] then \n within 23 bytes throws a
// codecError (1002), as in the Go decoder.
function decodeRaw(buf, U8) {
  var head = new U8(buf.slice(0, 23)), nl = [].indexOf.call(head, 10);
  var m = nl > 0 && RAW.exec(String.fromCharCode.apply(null, head.subarray(0, nl)));
  if (!m || m[1] > MAX_SAFE) throw codecError(1002);
  return ['b', +m[1], buf.slice(nl + 1)];
}

// fromBase64 decodes a base64 string the decoder has checked into a
// Uint8Array, with atob.
function fromBase64(s, atob, U8) {
  s = atob(s);
  for (var out = new U8(s.length), i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
