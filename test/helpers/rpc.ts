// The error an RPC fails with, for tests that expect a refusal.
import { ConnectError } from "@connectrpc/connect";

/** The ConnectError `call` fails with; throws when the call succeeds. */
export async function failure(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (e) {
    return ConnectError.from(e);
  }
  throw new Error("the call succeeded; expected it to fail");
}
