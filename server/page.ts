// Paging of List* RPCs, the same for every list: a page size (0: the
// default, at most MAX_PAGE_SIZE) and an opaque page token that encodes the
// offset of the next page. A token only means something to the list that
// issued it; anything else is refused as invalid input naming the field.
import { MAX_PAGE_SIZE } from "./contract.js";
import type { Problems } from "./errors.js";

/** Page size when the request leaves it 0. */
export const DEFAULT_PAGE_SIZE = 100;

/** A page request as it arrives (proto fields page_size, page_token). */
export interface PageRequest {
  pageSize: number;
  pageToken: string;
}

/** Where a page starts and how long it is. */
export interface PageWindow {
  offset: number;
  size: number;
}

/**
 * Checks a page request; adds problems naming `page_size` / `page_token`
 * (`rpc` names the list in the message) and returns the window to serve.
 */
export function readPage(p: Problems, req: PageRequest, rpc: string): PageWindow {
  if (req.pageSize > MAX_PAGE_SIZE) p.add("page_size", `is ${req.pageSize}; at most ${MAX_PAGE_SIZE}`);
  else if (req.pageSize < 0) p.add("page_size", `is ${req.pageSize}; must not be negative`);
  let offset = 0;
  if (req.pageToken !== "") {
    const m = /^o(\d{1,9})$/.exec(Buffer.from(req.pageToken, "base64url").toString());
    if (!m) p.add("page_token", `is not a token returned by ${rpc}`);
    else offset = Number(m[1]);
  }
  return { offset, size: req.pageSize === 0 ? DEFAULT_PAGE_SIZE : req.pageSize };
}

/** The items of `all` in `w`, and the token of the next page ("" after the last). */
export function pageOf<T>(all: readonly T[], w: PageWindow): { items: T[]; nextPageToken: string } {
  const end = w.offset + w.size;
  return { items: all.slice(w.offset, end), nextPageToken: end < all.length ? Buffer.from(`o${end}`).toString("base64url") : "" };
}
