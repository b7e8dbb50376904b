/** Real headless Chromium for the portal tests: pages that record what they send, screenshots, and axe-core checks. */
import assert from "node:assert/strict";
import { mkdir, readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Screenshots go here (git-ignored), one PNG per page and state. */
export const SCREENSHOTS = join(import.meta.dirname, "../../../test-results/portal");

export function launch(): Promise<Browser> {
  return chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
}

/** What a page sent and what went wrong in it (CSP violations, script errors). */
export interface Recorded {
  requests: { method: string; url: string; body: Buffer | null }[];
  problems: string[];
}

export async function openPage(context: BrowserContext): Promise<{ page: Page; recorded: Recorded }> {
  const page = await context.newPage();
  const recorded: Recorded = { requests: [], problems: [] };
  page.on("request", (request) => recorded.requests.push({ method: request.method(), url: request.url(), body: request.postDataBuffer() }));
  page.on("pageerror", (error) => recorded.problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error" && /Content Security Policy|Refused to/i.test(message.text())) recorded.problems.push(message.text());
  });
  return { page, recorded };
}

let axeSource: string | undefined;

/**
 * axe-core's WCAG 2.1 A/AA and best-practice rules on the page as it is; fails on any serious
 * or critical finding. The script is evaluated through the DevTools protocol, so the page's
 * CSP (`default-src 'self'`) stays as it is.
 */
export async function assertAccessible(page: Page, name: string): Promise<void> {
  axeSource ??= await readFile(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    // biome-ignore lint/suspicious/noExplicitAny: axe's global, present once its source is evaluated
    const axe = (globalThis as any).axe;
    const result = await axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] },
    });
    return (result.violations as { id: string; impact: string; help: string; nodes: { target: string[] }[] }[]).map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
    }));
  });
  const serious = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(serious, [], `${name}: axe found serious or critical problems`);
}

/** A full-page screenshot saved as a test artifact, and the page's accessibility checked. */
export async function look(page: Page, name: string): Promise<void> {
  await mkdir(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
  await assertAccessible(page, name);
}

/** The page is no wider than the viewport: nothing to scroll sideways on a phone (tables scroll in their own region). */
export async function assertFitsViewport(page: Page, name: string): Promise<void> {
  const { scrollWidth, innerWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
  }));
  assert.ok(scrollWidth <= innerWidth, `${name}: ${scrollWidth}px wide in a ${innerWidth}px viewport`);
}
