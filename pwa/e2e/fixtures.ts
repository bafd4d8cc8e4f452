/**
 * What every end-to-end test uses: the running stack, a page object for the task app,
 * the server's view of the tasks (ingest's read model) and screenshots.
 *
 * All tests share one stack, so each keeps to its own tasks: titles carry `tag`, unique
 * per test, and tasks are found by the entity id the app gave them.
 */
import {
  expect,
  test as base,
  type Browser,
  type BrowserContext,
  type Locator,
  type Page,
} from "@playwright/test";
import { mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { EntityState } from "../src/generated/schemas";
import type { OutboxRecord } from "../src/store/types";
import { stackFromEnv, type StackInfo } from "./stack";

const SCREENSHOTS = resolve(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "test-results",
  "screenshots",
);

/** The task app in one page (one browser context = one device). */
export class TaskApp {
  constructor(
    readonly page: Page,
    private readonly stack: StackInfo,
  ) {}

  get banner(): Locator {
    return this.page.getByTestId("sync-banner");
  }

  get connection(): Locator {
    return this.page.getByTestId("connection");
  }

  /** Open the app and wait until it is live (push open) and the service worker controls it. */
  async open(): Promise<void> {
    await this.page.goto(this.stack.appUrl);
    await this.waitOnline();
    await this.page.waitForFunction(() => navigator.serviceWorker.controller !== null);
  }

  async waitOnline(): Promise<void> {
    await expect(this.connection).toHaveAttribute("data-state", "online");
    await expect(this.connection).toHaveText("Online");
  }

  /** Add a task through the form; returns the id the app gave it. */
  async addTask(title: string): Promise<string> {
    await this.page.getByLabel("New task").fill(title);
    await this.page.getByRole("button", { name: "Add" }).click();
    const item = this.page
      .getByTestId("task")
      .filter({ has: this.page.getByTestId("task-title").getByText(title, { exact: true }) });
    await expect(item).toHaveCount(1);
    const id = await item.getAttribute("data-task-id");
    if (id === null) throw new Error(`task '${title}' has no data-task-id`);
    return id;
  }

  task(id: string): Locator {
    return this.page.locator(`[data-testid="task"][data-task-id="${id}"]`);
  }

  title(id: string): Locator {
    return this.task(id).getByTestId("task-title");
  }

  async rename(id: string, title: string): Promise<void> {
    await this.task(id).getByTestId("task-edit").click();
    await this.task(id).getByTestId("task-edit-input").fill(title);
    await this.task(id).getByTestId("task-edit-input").press("Enter");
    await expect(this.title(id)).toHaveText(title);
  }

  async tick(id: string): Promise<void> {
    await this.task(id).getByTestId("task-done").check();
  }

  async remove(id: string): Promise<void> {
    await this.task(id).getByTestId("task-delete").click();
    await expect(this.task(id)).toHaveCount(0);
  }

  /** The outbox as the engine holds it (`window.syncpipe`). */
  outbox(): Promise<Pick<OutboxRecord, "status" | "attempts">[]> {
    return this.page.evaluate(() => {
      const engine = (window as unknown as { syncpipe?: { outbox: { list(): OutboxRecord[] } } })
        .syncpipe;
      return (engine?.outbox.list() ?? []).map((r) => ({ status: r.status, attempts: r.attempts }));
    });
  }

  /** Wait until nothing of this device's is left in the outbox (every op reconciled). */
  async waitReconciled(): Promise<void> {
    await expect.poll(async () => (await this.outbox()).map((r) => r.status)).toEqual([]);
    await expect(this.banner).toBeHidden();
  }

  async screenshot(name: string): Promise<void> {
    mkdirSync(SCREENSHOTS, { recursive: true });
    await this.page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
  }
}

/** The server's accepted state of every task of the dev tenant (ingest's read model). */
export async function serverTasks(stack: StackInfo): Promise<Map<string, EntityState>> {
  const out = new Map<string, EntityState>();
  let cursor: string | null = "";
  while (cursor !== null) {
    const url = new URL("/v1/collections/tasks/entities", stack.ingestUrl);
    url.searchParams.set("limit", "500");
    if (cursor) url.searchParams.set("cursor", cursor);
    const res = await fetch(url, { headers: { Authorization: `Bearer ${stack.token}` } });
    if (!res.ok) throw new Error(`GET ${url} → ${res.status}: ${await res.text()}`);
    const page = (await res.json()) as { entities: EntityState[]; cursor: string | null };
    for (const e of page.entities) {
      const seen = out.get(e.entity_id);
      if (seen === undefined || seen.version < e.version) out.set(e.entity_id, e);
    }
    cursor = page.cursor;
  }
  return out;
}

/** `{title, done, deleted}` of one task on the server, or null when it has none. */
export async function serverTask(
  stack: StackInfo,
  id: string,
): Promise<{ title: unknown; done: unknown; deleted: boolean } | null> {
  const e = (await serverTasks(stack)).get(id);
  if (e === undefined) return null;
  return { title: e.fields.title?.value, done: e.fields.done?.value, deleted: e.deleted };
}

interface Fixtures {
  stack: StackInfo;
  /** Unique per test: put it in every title the test creates. */
  tag: string;
  app: TaskApp;
  /** Open another device (its own browser context, so its own client id and IndexedDB). */
  device: () => Promise<TaskApp>;
}

async function newDevice(
  browser: Browser,
  stack: StackInfo,
  contexts: BrowserContext[],
): Promise<TaskApp> {
  const context = await browser.newContext();
  contexts.push(context);
  const app = new TaskApp(await context.newPage(), stack);
  await app.open();
  return app;
}

export const test = base.extend<Fixtures>({
  stack: async ({}, use) => {
    await use(stackFromEnv());
  },
  tag: async ({}, use, testInfo) => {
    await use(`${testInfo.testId.slice(0, 6)}-${Date.now().toString(36)}`);
  },
  app: async ({ page, stack }, use) => {
    const app = new TaskApp(page, stack);
    await app.open();
    await use(app);
  },
  device: async ({ browser, stack }, use) => {
    const contexts: BrowserContext[] = [];
    await use(() => newDevice(browser, stack, contexts));
    for (const c of contexts) await c.close();
  },
});

export { expect };
