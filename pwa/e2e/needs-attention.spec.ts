/** A change ingest refuses waits under "Needs attention" with ingest's reason. */
import { expect, test } from "./fixtures";

test("a change ingest refuses is listed under needs attention with ingest's reason, and retry sends it again", async ({
  app,
  page,
  stack,
  tag,
}) => {
  // Spoil the op on its way (an entity id over ingest's 128-character limit), so the real
  // ingest refuses it; the stored op stays intact for the retry.
  const ops = `${stack.ingestUrl}/v1/ops`;
  await page.route(ops, async (route) => {
    if (route.request().method() !== "POST") return route.fallback();
    const batch = route.request().postDataJSON() as { ops: { entity_id: string }[] };
    for (const op of batch.ops) op.entity_id = "x".repeat(200);
    await route.continue({ postData: JSON.stringify(batch) });
  });

  // Refused, the new task leaves the list: the attention list is where it is now.
  await page.getByLabel("New task").fill(`Refused ${tag}`);
  await page.getByLabel("New task").press("Enter");
  const attention = page.getByTestId("needs-attention");
  const item = attention.getByTestId("attention-item");
  await expect(item).toHaveCount(1);
  await expect(item).toContainText(`Create 'Refused ${tag}'`);
  await expect(item.getByTestId("attention-reason")).toHaveText(/entity_id.*128 characters/);
  await expect(page.getByTestId("sync-banner")).toBeHidden();
  await app.screenshot("needs-attention");

  await page.unroute(ops);
  await item.getByRole("button", { name: `Retry: Create 'Refused ${tag}'` }).click();
  await expect(attention).toBeHidden();
  const task = page
    .getByTestId("task")
    .filter({ has: page.getByTestId("task-title").getByText(`Refused ${tag}`, { exact: true }) });
  await expect(task).toHaveCount(1);
  await expect(task.getByTestId("task-unsynced")).toBeHidden();
  await expect.poll(async () => (await app.outbox()).map((r) => r.status)).not.toContain("failed");
});
