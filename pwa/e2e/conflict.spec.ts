/** Issue 6, Playwright (2): two devices rename one task, one of them offline. */
import { expect, serverTask, test } from "./fixtures";

test("the device that renamed offline loses to the newer rename, sees the conflict hint and wins with apply mine again", async ({
  app: phone,
  device,
  stack,
  tag,
}) => {
  const laptop = await device();
  const id = await phone.addTask(`Shared ${tag}`);
  await expect(laptop.title(id)).toHaveText(`Shared ${tag}`);
  await phone.waitReconciled();

  await phone.page.context().setOffline(true);
  await expect(phone.connection).toHaveText("Offline");
  await phone.rename(id, `Phone's title ${tag}`);
  await expect(phone.page.getByTestId("sync-count")).toHaveText("1 change waiting to sync");

  // Later, so with a newer HLC: the laptop's rename wins.
  await laptop.rename(id, `Laptop's title ${tag}`);
  await laptop.waitReconciled();
  await expect.poll(async () => (await serverTask(stack, id))?.title).toBe(`Laptop's title ${tag}`);

  await phone.page.context().setOffline(false);
  await phone.waitOnline();
  const hint = phone.task(id).getByTestId("conflict-hint");
  await expect(hint.getByTestId("conflict-text")).toHaveText(
    `kept 'Laptop's title ${tag}' from another device`,
  );
  await expect(phone.title(id)).toHaveText(`Laptop's title ${tag}`);
  await expect(laptop.title(id)).toHaveText(`Laptop's title ${tag}`);
  await expect(laptop.task(id).getByTestId("conflict-hint")).toHaveCount(0);
  await phone.screenshot("conflict-hint");

  await hint.getByRole("button", { name: "Apply mine again" }).click();
  await expect(hint).toHaveCount(0);
  await expect(phone.title(id)).toHaveText(`Phone's title ${tag}`);
  await phone.waitReconciled();
  await expect(laptop.title(id)).toHaveText(`Phone's title ${tag}`);
  await expect.poll(async () => (await serverTask(stack, id))?.title).toBe(`Phone's title ${tag}`);
  await phone.screenshot("conflict-applied-mine");
  await laptop.screenshot("conflict-other-device");
});
