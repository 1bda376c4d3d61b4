// Render Markdown reports the way GitHub shows them: GitHub-flavoured Markdown to HTML (marked),
// every ```mermaid block drawn by mermaid 11 in headless Chromium. Prints one JSON list, one
// document per report:
//   {"markdown_errors": [...], "blocks": [{"error", "title", "legend", "x_ticks", "y_ticks", "texts"}],
//    "tables": [{"headers", "visible_headers", "rows"}], "code": [...], "text": "..."}
// Usage: node render_report.mjs <chromium> <user-data-dir> <report.md>[=<screenshot.png>] ...
// Run from the directory that holds node_modules (the test's npm cache dir).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { marked } from 'marked';
import puppeteer from 'puppeteer-core';

const require = createRequire(import.meta.url);
const [chromium, userDataDir, ...reports] = process.argv.slice(2);

const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  userDataDir,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--no-first-run'],
});
const results = [];
try {
  for (const report of reports) {
    const [reportPath, screenshotPath] = report.split('=');
    results.push(await render(readFileSync(reportPath, 'utf8'), screenshotPath));
  }
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(results) + '\n');

async function render(markdown, screenshotPath) {
  const markdownErrors = [];
  let html = '';
  try {
    html = marked.parse(markdown, { gfm: true, async: false });
  } catch (error) {
    markdownErrors.push(String(error));
  }
  const page = await browser.newPage();
  await page.setViewport({ width: 1012, height: 900 });  // GitHub's Markdown column
  page.on('pageerror', (error) => markdownErrors.push('page error: ' + error.message));
  // The few rules of GitHub's Markdown stylesheet that decide whether a table fits the page.
  await page.setContent('<!doctype html><html><head><style>'
    + 'body{margin:0;font:16px/1.5 -apple-system,"Segoe UI","Noto Sans",Helvetica,Arial,sans-serif}'
    + 'article{box-sizing:border-box;width:1012px;padding:32px}'
    + 'table{display:block;max-width:100%;width:max-content;overflow:auto;border-spacing:0;border-collapse:collapse}'
    + 'th,td{padding:6px 13px;border:1px solid #d1d9e0}'
    + 'code{font:85% ui-monospace,SFMono-Regular,Menlo,monospace;padding:.2em .4em}'
    + '</style></head><body><article id="report"></article></body></html>');
  await page.addScriptTag({ path: require.resolve('mermaid/dist/mermaid.min.js') });
  const result = await page.evaluate(async (body) => {
    const article = document.getElementById('report');
    article.innerHTML = body;
    window.mermaid.initialize({ startOnLoad: false, securityLevel: 'strict' });
    const blocks = [];
    const sources = Array.from(article.querySelectorAll('pre > code.language-mermaid'));
    for (const [index, code] of sources.entries()) {
      const source = code.textContent;
      const holder = document.createElement('div');
      code.parentElement.replaceWith(holder);
      const block = { error: null };
      try {
        await window.mermaid.parse(source);
        const { svg } = await window.mermaid.render('chart' + index, source);
        holder.innerHTML = svg;
        const texts = (selector) => Array.from(holder.querySelectorAll(selector)).map((n) => n.textContent.trim());
        block.title = texts('g.chart-title text').join(' ');
        block.legend = texts('g.legend text');
        block.x_ticks = texts('g.bottom-axis g.label text');
        block.y_ticks = texts('g.left-axis g.label text');
        block.texts = texts('text');
        block.svg_width = holder.querySelector('svg').getBoundingClientRect().width;
      } catch (error) {
        block.error = String(error && error.message ? error.message : error);
      }
      blocks.push(block);
    }
    // A header is visible when it ends inside the table's box (GitHub scrolls wider tables).
    const tables = Array.from(article.querySelectorAll('table')).map((table) => {
      const box = table.getBoundingClientRect();
      const headers = Array.from(table.querySelectorAll('thead th'));
      return {
        headers: headers.map((th) => th.textContent.trim()),
        visible_headers: headers.filter((th) => th.getBoundingClientRect().right <= box.right + 0.5)
          .map((th) => th.textContent.trim()),
        rows: table.querySelectorAll('tbody tr').length,
      };
    });
    const code = Array.from(article.querySelectorAll('code')).map((node) => node.textContent);
    return { blocks, tables, code, text: article.innerText };
  }, html);
  if (screenshotPath) {
    await page.screenshot({ path: screenshotPath, fullPage: true });
  }
  await page.close();
  return { markdown_errors: markdownErrors, ...result };
}
