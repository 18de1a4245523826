// Opens the console page in headless Chromium (playwright-core) and saves a screenshot once
// the guest's screen shows: prints {"status": …, "lit": pixels that are not black, "shown": the screen's height on the page}
// as JSON.
//
//   NODE_PATH=<node_modules> node vnc_screenshot.cjs PAGE_URL OUT.png
"use strict";

const { chromium } = require("playwright-core");

async function main() {
  const [url, out] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1024, height: 700 } });
    // The page's own messages help when it fails.
    page.on("console", (m) => console.error("page: " + m.text()));
    page.on("pageerror", (e) => console.error("page error: " + e));
    await page.goto(url);
    // Connected, or a refusal the page explains.
    await page.waitForFunction(() => /Connected|token|VM|failed|lost/.test(document.getElementById("status").textContent), null, { timeout: 20000 });
    const status = await page.textContent("#status");
    let lit = 0;
    let shown = 0;
    if (status === "Connected") {
      // Text on the guest's screen: wait until the canvas has pixels that are not black.
      const deadline = Date.now() + 20000;
      while (Date.now() < deadline) {
        lit = await page.evaluate(() => {
          const c = document.querySelector("#screen canvas");
          if (!c || !c.width) return 0;
          const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
          let n = 0;
          for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] > 96) n++;
          return n;
        });
        shown = await page.evaluate(() => {
          const c = document.querySelector("#screen canvas");
          return c ? Math.round(c.getBoundingClientRect().height) : 0;
        });
        if (lit > 0 && shown > 0) break;
        await page.waitForTimeout(250);
      }
    }
    await page.screenshot({ path: out });
    console.log(JSON.stringify({ status, lit, shown }));
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
