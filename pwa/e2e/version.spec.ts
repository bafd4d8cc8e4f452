/** Issue 6, Playwright (4): the "new version available" banner. */
import { expect, test, TaskApp } from "./fixtures";

interface Message {
  type: string;
  app_version?: string;
  server_hlc?: string;
  messages?: Message[];
}

type Engine = { clock: { last: string | null }; push: { idle(): Promise<void> } | null };

test("the new version banner appears when push announces another app version and reload clears it", async ({
  page,
  stack,
}) => {
  // Sit between the app and push; when `announce` is set, hello claims that version.
  let announce: string | null = null;
  const hellos: string[] = [];
  const rewrite = (m: Message): Message => {
    if (m.type === "batch") return { ...m, messages: (m.messages ?? []).map(rewrite) };
    if (m.type !== "hello") return m;
    hellos.push(m.server_hlc ?? "");
    return announce === null ? m : { ...m, app_version: announce };
  };
  await page.routeWebSocket(/\/v1\/ws/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((m) => server.send(m));
    server.onMessage((m) => {
      ws.send(typeof m === "string" ? JSON.stringify(rewrite(JSON.parse(m) as Message)) : m);
    });
  });
  const app = new TaskApp(page, stack);
  const banner = page.getByTestId("version-banner");
  /** Wait until the page has handled the next hello: its clock adopted it, push is idle. */
  const helloHandled = async (count: number): Promise<void> => {
    await expect.poll(() => hellos.length).toBe(count);
    const hlc = hellos[count - 1] ?? "";
    await expect
      .poll(() =>
        page.evaluate(
          (h) => ((window as unknown as { syncpipe?: Engine }).syncpipe?.clock.last ?? "") >= h,
          hlc,
        ),
      )
      .toBe(true);
    await page.evaluate(() => (window as unknown as { syncpipe: Engine }).syncpipe.push?.idle());
  };

  // The real stack announces the version this build was made for.
  await app.open();
  await helloHandled(1);
  await expect(banner).toBeHidden();

  announce = "99.0.0";
  await page.reload();
  await helloHandled(2);
  await expect(banner).toBeVisible();
  await expect(banner).toContainText("New version available — reload to update.");
  await expect(page.getByRole("alert")).toContainText("New version available");
  await app.screenshot("version-banner");

  announce = null;
  await banner.getByRole("button", { name: "Reload" }).click();
  await helloHandled(3);
  await app.waitOnline();
  await expect(banner).toBeHidden();
});
