// Loads /docs in headless Chromium (Debian's, with playwright-core: no browser download) and
// reports what a reader sees: the service groups, the search box narrowing them, an operation
// opened with its request schema (limits, enum values), and the key field of "Authorize".
// Usage: node docs.mjs <chromium> <base URL>; prints one JSON object.
import { chromium } from "playwright-core";

const [executablePath, base] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath, args: ["--no-sandbox", "--headless=new"] });
try {
  const page = await browser.newPage();
  await page.goto(base + "/docs", { waitUntil: "load" });
  await page.waitForSelector(".opblock-tag", { timeout: 20000 });
  const tags = await page.$$eval(".opblock-tag", (els) => els.map((e) => e.getAttribute("data-tag")));

  await page.fill(".operation-filter-input", "Support");
  await page.waitForFunction(() => document.querySelectorAll(".opblock-tag").length === 1, null, { timeout: 10000 });
  const filtered = await page.$$eval(".opblock-tag", (els) => els.map((e) => e.getAttribute("data-tag")));
  await page.fill(".operation-filter-input", "");
  await page.waitForFunction((n) => document.querySelectorAll(".opblock-tag").length === n, tags.length, { timeout: 10000 });

  const op = "#operations-MarketingService-MarketingService_CaptureLead";
  await page.click(`${op} .opblock-summary`);
  await page.waitForSelector(`${op} .opblock-body`, { timeout: 10000 });
  const example = await page.textContent(`${op} .opblock-body`);
  await page.click(`${op} .opblock-body [data-name="model"] button, ${op} .opblock-body .tab li:nth-child(2) button`);
  await page.waitForSelector(`${op} .opblock-body .model-box`, { timeout: 10000 });
  // Open the nested models so enums and limits show.
  for (let i = 0; i < 3; i++) {
    const closed = await page.$$(`${op} .opblock-body .model-box-control[aria-expanded="false"]`);
    for (const c of closed) await c.click().catch(() => {});
  }
  const schema = await page.textContent(`${op} .opblock-body`);

  await page.click(".btn.authorize");
  await page.waitForSelector(".auth-container input", { timeout: 10000 });
  const keyField = await page.$$eval(".auth-container input", (els) => els.map((e) => e.getAttribute("type") || "text"));

  console.log(JSON.stringify({ tags, filtered, example, schema, keyField }));
} finally {
  await browser.close();
}
