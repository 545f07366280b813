// Protobuf strings decoded as they were sent. protobuf-es decodes binary
// string fields with a default WHATWG TextDecoder, which drops a leading
// U+FEFF (byte order mark) from every string: a name "\uFEFFweb" sent in the
// binary format would arrive as "web" and slip past the check that refuses
// format characters (server/check.ts), while the same name in JSON is
// refused. Protobuf strings carry their code points verbatim, so the daemon
// decodes with `ignoreBOM: true` through protobuf-es's own hook,
// configureTextEncoding.
import { configureTextEncoding } from "@bufbuild/protobuf/wire";

/** Makes protobuf-es keep a leading U+FEFF in decoded strings (process-wide). */
export function keepByteOrderMarks(): void {
  const encoder = new TextEncoder();
  const lenient = new TextDecoder("utf-8", { ignoreBOM: true });
  const strict = new TextDecoder("utf-8", { ignoreBOM: true, fatal: true });
  configureTextEncoding({
    encodeUtf8: (text) => encoder.encode(text),
    decodeUtf8: (bytes, fatal) => (fatal ? strict : lenient).decode(bytes),
    checkUtf8(text) {
      try {
        encodeURIComponent(text);
        return true;
      } catch {
        return false;
      }
    },
  });
}
