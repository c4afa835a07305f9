/**
 * A small `multipart/form-data` reader for bodies already held whole (a voice sample upload,
 * bounded by its limit): each part's name, file name, type and bytes.
 */
import { HttpError } from "../../http/error.ts";

/** One part of a form. */
export interface FormPart {
  name: string;
  filename?: string;
  type?: string;
  data: Buffer;
}

const malformed = (why: string): HttpError =>
  new HttpError(400, "invalid_request_error", `malformed multipart/form-data: ${why}`);

/** The parts of `body`, a form with `boundary`. */
export function readForm(body: Buffer, boundary: string): FormPart[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: FormPart[] = [];
  let at = body.indexOf(delimiter);
  if (at < 0) throw malformed("no boundary");
  for (;;) {
    at += delimiter.length;
    if (body.subarray(at, at + 2).toString("latin1") === "--") return parts;
    if (body.subarray(at, at + 2).toString("latin1") !== "\r\n")
      throw malformed("bad boundary line");
    at += 2;
    const headEnd = body.indexOf("\r\n\r\n", at);
    if (headEnd < 0) throw malformed("a part without headers");
    const next = body.indexOf(Buffer.concat([Buffer.from("\r\n"), delimiter]), headEnd + 4);
    if (next < 0) throw malformed("no closing boundary");
    const headers = body.subarray(at, headEnd).toString("utf8").split("\r\n");
    const part: FormPart = { name: "", data: body.subarray(headEnd + 4, next) };
    for (const line of headers) {
      const [key = "", ...rest] = line.split(":");
      const value = rest.join(":").trim();
      if (key.trim().toLowerCase() === "content-disposition") {
        part.name = /\bname="([^"]*)"/i.exec(value)?.[1] ?? "";
        const filename = /\bfilename="([^"]*)"/i.exec(value)?.[1];
        if (filename !== undefined) part.filename = filename;
      } else if (key.trim().toLowerCase() === "content-type") part.type = value;
    }
    parts.push(part);
    at = next + 2;
  }
}
