/** Issue 6, Playwright (1): edits made offline survive a reload and drain when online. */
import { expect, serverTask, test } from "./fixtures";

test("edits made offline are counted, survive a reload while offline and reach the server once online", async ({
  app,
  page,
  stack,
  tag,
  device,
}) => {
  const renamed = await app.addTask(`Rename me ${tag}`);
  const removed = await app.addTask(`Delete me ${tag}`);
  await app.waitReconciled();
  await expect.poll(() => serverTask(stack, removed)).toMatchObject({ deleted: false });

  await page.context().setOffline(true);
  await expect(app.connection).toHaveText("Offline");
  const created = await app.addTask(`Created offline ${tag}`);
  await app.tick(created);
  await app.rename(renamed, `Renamed offline ${tag}`);
  await app.remove(removed);
  await expect(page.getByTestId("sync-count")).toHaveText("4 changes waiting to sync");
  await expect(page.getByTestId("sync-detail")).toHaveText(
    "You are offline: they will be sent when you are back online.",
  );
  await expect(page.getByRole("button", { name: "Sync now" })).toBeDisabled();
  await expect(app.task(created).getByTestId("task-unsynced")).toBeVisible();
  await app.screenshot("offline-queue");

  const shell = await page.reload();
  expect(shell?.fromServiceWorker()).toBe(true); // the network is off: the cached app shell
  await expect(app.connection).toHaveText("Offline");
  await expect(page.getByTestId("sync-count")).toHaveText("4 changes waiting to sync");
  await expect(app.title(created)).toHaveText(`Created offline ${tag}`);
  await expect(app.task(created).getByTestId("task-done")).toBeChecked();
  await expect(app.title(renamed)).toHaveText(`Renamed offline ${tag}`);
  await expect(app.task(removed)).toHaveCount(0);
  expect((await app.outbox()).map((r) => r.status)).toEqual([
    "pending",
    "pending",
    "pending",
    "pending",
  ]);
  await app.screenshot("offline-after-reload");

  await page.context().setOffline(false);
  await app.waitOnline();
  await app.waitReconciled();
  await expect(app.task(created).getByTestId("task-unsynced")).toBeHidden();
  await app.screenshot("online-drained");

  await expect
    .poll(() => serverTask(stack, created))
    .toEqual({ title: `Created offline ${tag}`, done: true, deleted: false });
  await expect
    .poll(() => serverTask(stack, renamed))
    .toMatchObject({ title: `Renamed offline ${tag}`, deleted: false });
  await expect.poll(async () => (await serverTask(stack, removed))?.deleted).toBe(true);

  // Another device starting now sees the same list.
  const other = await device();
  await expect(other.title(created)).toHaveText(`Created offline ${tag}`);
  await expect(other.task(created).getByTestId("task-done")).toBeChecked();
  await expect(other.title(renamed)).toHaveText(`Renamed offline ${tag}`);
  await expect(other.task(removed)).toHaveCount(0);
});
