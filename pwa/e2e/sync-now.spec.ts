/** Issue 6, Playwright (3): "Sync now" does not wait out a backoff. */
import { expect, serverTask, test } from "./fixtures";

test("sync now sends an op that waits out an hour-long Retry-After at once", async ({
  app,
  page,
  stack,
}) => {
  // ingest is "unavailable" and asks for an hour's patience.
  let refused = 0;
  const ops = `${stack.ingestUrl}/v1/ops`;
  await page.route(ops, async (route) => {
    if (route.request().method() !== "POST") return route.fallback();
    refused += 1;
    await route.fulfill({
      status: 503,
      headers: {
        "Content-Type": "application/problem+json",
        "Retry-After": "3600",
        "Access-Control-Allow-Origin": new URL(stack.appUrl).origin,
        "Access-Control-Expose-Headers": "Retry-After",
      },
      body: JSON.stringify({
        type: "about:blank",
        title: "Service Unavailable",
        status: 503,
        code: "broker_unavailable",
        detail: "the broker did not answer; try again later",
        retriable: true,
        retry_after_s: 3600,
      }),
    });
  });

  const id = await app.addTask(`Waiting out a backoff ${Date.now()}`);
  await expect.poll(async () => (await app.outbox()).map((r) => r.status)).toEqual(["retrying"]);
  expect(refused).toBe(1);
  await expect(page.getByTestId("sync-count")).toHaveText("1 change waiting to sync");
  await expect(page.getByTestId("sync-detail")).toContainText(
    "Not sent yet (the broker did not answer; try again later). Next try at ",
  );
  await expect(app.task(id).getByTestId("task-unsynced")).toBeVisible();
  await app.screenshot("backoff-waiting");

  // ingest is back; nothing would send before the hour is up but Sync now.
  await page.unroute(ops);
  await page.getByRole("button", { name: "Sync now" }).click();
  await app.waitReconciled();
  await expect(app.task(id).getByTestId("task-unsynced")).toBeHidden();
  await expect.poll(async () => (await serverTask(stack, id))?.deleted).toBe(false);
  expect(refused).toBe(1);
});
