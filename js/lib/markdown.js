// Markdown to safe HTML (raw HTML in the source is escaped), code highlighted by
// highlight.js; both bundled, nothing fetched.
import MarkdownIt from "markdown-it";
import hljs from "highlight.js/lib/core";
import bash from "highlight.js/lib/languages/bash";
import javascript from "highlight.js/lib/languages/javascript";
import json from "highlight.js/lib/languages/json";
import markdownLang from "highlight.js/lib/languages/markdown";
import python from "highlight.js/lib/languages/python";
import sql from "highlight.js/lib/languages/sql";
import xml from "highlight.js/lib/languages/xml";
import yaml from "highlight.js/lib/languages/yaml";

for (const [name, lang] of Object.entries({ bash, javascript, json, markdown: markdownLang, python, sql, xml, yaml })) {
  hljs.registerLanguage(name, lang);
}
hljs.registerAliases(["sh", "shell"], { languageName: "bash" });
hljs.registerAliases(["js"], { languageName: "javascript" });
hljs.registerAliases(["html"], { languageName: "xml" });
hljs.registerAliases(["py"], { languageName: "python" });

export function escapeHtml(text) {
  return String(text)
    .replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;").replaceAll("'", "&#39;");
}

/** Highlighted HTML for `code` in `language` (escaped plain text if it is unknown). */
export function highlight(code, language = "") {
  const lang = (language || "").toLowerCase();
  if (lang && hljs.getLanguage(lang)) {
    return hljs.highlight(code, { language: lang, ignoreIllegals: true }).value;
  }
  return escapeHtml(code);
}

/** The language a file's name suggests, for highlighting previews. */
export function languageOf(path) {
  const ext = (path.split(".").pop() || "").toLowerCase();
  const byExt = { py: "python", sh: "bash", js: "javascript", mjs: "javascript", json: "json",
    md: "markdown", sql: "sql", html: "xml", xml: "xml", svg: "xml", yml: "yaml", yaml: "yaml" };
  return byExt[ext] || "";
}

const md = new MarkdownIt({
  html: false,
  linkify: false,
  breaks: false,
  highlight: (code, lang) => `<pre class="ji-code hljs"><code>${highlight(code, lang)}</code></pre>`,
});
const defaultLink = md.renderer.rules.link_open || ((tokens, i, options, env, self) => self.renderToken(tokens, i, options));
md.renderer.rules.link_open = (tokens, i, options, env, self) => {
  tokens[i].attrSet("target", "_blank");
  tokens[i].attrSet("rel", "noopener noreferrer");
  return defaultLink(tokens, i, options, env, self);
};

/** Safe HTML for Markdown `text`. */
export function renderMarkdown(text) {
  return md.render(text || "");
}
