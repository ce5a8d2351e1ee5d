// Links to the console's own pages.

import { enc } from "./api.js";
import { h } from "./dom.js";

export const collectionLink = (name) => h("a", { href: `#/c/${enc(name)}` }, name);
// A document id may hold slashes: each segment is encoded, the slashes kept (as the API's
// `{document_id:path}` reads them).
export const documentPath = (id) => id.split("/").map(enc).join("/");
export const documentHash = (collection, id, chunk = null) =>
  `#/c/${enc(collection)}/d/${documentPath(id)}${chunk === null ? "" : `?chunk=${chunk}`}`;
export const documentLink = (collection, id, label = id) => h("a", { href: documentHash(collection, id) }, label);
