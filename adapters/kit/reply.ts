/**
 * Replies an adapter writes itself, and the dispatch of a call to the handler of its endpoint:
 * what an adapter serves is the list of its handlers, and a refusal a handler throws (an
 * `HttpError`: a bad form, a field out of range) becomes the reply with its status.
 */
import { Readable } from "node:stream";
import { HttpError } from "../../src/http/error.ts";
import { envelope, type ErrorType } from "../../src/protocol/index.ts";
import type { Adapter, EngineCall, EngineReply, Handler } from "../adapter.ts";

/** A reply the adapter answers itself, with a JSON body. */
export function jsonReply(status: number, body: unknown): EngineReply {
  const text = JSON.stringify(body);
  return {
    status,
    headers: {
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(text)),
    },
    body: Readable.from([Buffer.from(text)]),
  };
}

/** An error reply in the club's envelope. */
export function errorReply(status: number, type: ErrorType, message: string): EngineReply {
  return jsonReply(status, envelope(type, message));
}

/** The refusal for an endpoint of the model's service type that the engine does not serve. */
export function notServed(engine: string, call: Pick<EngineCall, "endpoint">): HttpError {
  const { method, path } = call.endpoint;
  return new HttpError(404, "not_found_error", `${engine} does not serve ${method} ${path}`);
}

/**
 * The `serves` and `execute` of an adapter with one handler per public path. A call to another
 * path (the gateway never sends one) and a refusal a handler throws are answered with the
 * refusal's status and envelope; the rest of the call's body is drained.
 * @example
 * return { name: "kokoro", displayName: "Kokoro-FastAPI", ...serving("Kokoro-FastAPI", {
 *   "/v1/audio/speech": speech,
 * }) };
 */
export function serving(
  engine: string,
  handlers: Readonly<Record<string, Handler>>,
): Pick<Adapter, "serves" | "execute"> {
  return {
    serves: Object.keys(handlers),
    async execute(call) {
      try {
        const handler = handlers[call.endpoint.path];
        if (!handler) throw notServed(engine, call);
        return await handler(call);
      } catch (err) {
        if (!(err instanceof HttpError)) throw err;
        call.stream?.resume();
        return jsonReply(err.status, err.envelope);
      }
    },
  };
}
