// A small RFC 4180 CSV reader for previews: quoted fields, doubled quotes, CRLF; stops
// after `limit` rows so a huge file costs no more than its first rows.

export function parseCsv(text, limit = 50) {
  const rows = [];
  let row = [];
  let field = "";
  let quoted = false;
  let i = 0;
  while (i < text.length && rows.length < limit) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i += 2; continue; }
      if (c === '"') { quoted = false; i += 1; continue; }
      field += c;
      i += 1;
      continue;
    }
    if (c === '"' && field === "") { quoted = true; i += 1; continue; }
    if (c === ",") { row.push(field); field = ""; i += 1; continue; }
    if (c === "\n" || c === "\r") {
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
      i += c === "\r" && text[i + 1] === "\n" ? 2 : 1;
      continue;
    }
    field += c;
    i += 1;
  }
  if ((field !== "" || row.length) && rows.length < limit) {
    row.push(field);
    rows.push(row);
  }
  return { rows, truncated: i < text.length };
}
