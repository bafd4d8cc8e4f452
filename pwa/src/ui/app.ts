/**
 * The task app: plain DOM, rendered from `engine.tasks()` and `engine.status()` on every
 * engine change. Stable `data-testid`s and accessible names are part of its interface
 * (end-to-end tests use them).
 */
import type { Op } from "../generated/schemas";
import type { OutboxRecord } from "../store/types";
import type { EngineStatus, SyncEngine } from "../sync/engine";
import { h, setText, show } from "./dom";
import { TaskItem } from "./task-item";

export interface AppOptions {
  /** Where the token came from ("none" shows the dev token form up front). */
  tokenSource: "config" | "dev" | "none";
  /** Save a token typed into the dev token form and reconnect. */
  saveToken(token: string): void;
  /** Reload the page (the "new version" banner). */
  reload(): void;
}

/** "Rename to 'x'", "Mark done", "Delete task", … for the needs-attention list. */
export function describeOp(op: Op, title?: string): string {
  const what = title ? ` '${title}'` : "";
  if (op.kind === "delete") return `Delete task${what}`;
  const f = op.fields ?? {};
  const parts: string[] = [];
  if (typeof f.title === "string")
    parts.push(`${"done" in f ? "Create" : "Rename to"} '${f.title}'`);
  if (typeof f.done === "boolean" && !("title" in f))
    parts.push(f.done ? `Mark${what} done` : `Mark${what} not done`);
  return parts.length > 0 ? parts.join(", ") : `Change${what}`;
}

export function waitingText(n: number): string {
  return `${n} ${n === 1 ? "change" : "changes"} waiting to sync`;
}

/** Why the waiting changes are not on their way yet, under the count (or "" when they are). */
export function waitingDetail(
  status: Pick<EngineStatus, "network" | "nextRetry">,
  formatTime: (ms: number) => string = (ms) => new Date(ms).toLocaleTimeString(),
): string {
  if (!status.network) return "You are offline: they will be sent when you are back online.";
  if (status.nextRetry === null) return "";
  const reason = status.nextRetry.reason.replace(/[.\s]+$/, "");
  const why = reason === "" ? "" : ` (${reason})`;
  return `Not sent yet${why}. Next try at ${formatTime(status.nextRetry.at)}.`;
}

export class App {
  private readonly items = new Map<string, TaskItem>();
  private readonly list: HTMLUListElement;
  private readonly empty: HTMLParagraphElement;
  private readonly connection: HTMLSpanElement;
  private readonly syncBanner: HTMLDivElement;
  private readonly syncCount: HTMLSpanElement;
  private readonly syncDetail: HTMLSpanElement;
  private readonly syncNow: HTMLButtonElement;
  private readonly versionBanner: HTMLDivElement;
  private readonly attention: HTMLElement;
  private readonly attentionList: HTMLUListElement;
  private readonly errorLine: HTMLParagraphElement;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly root: HTMLElement,
    private readonly engine: SyncEngine,
    private readonly options: AppOptions,
  ) {
    this.connection = h("span", {
      class: "connection",
      role: "status",
      "data-testid": "connection",
    });
    const header = h("header", { class: "bar" }, h("h1", {}, "Tasks"), this.connection);

    const reload = h("button", { type: "button", "data-testid": "version-reload" }, "Reload");
    reload.addEventListener("click", () => this.options.reload());
    this.versionBanner = h(
      "div",
      { class: "banner version", role: "alert", "data-testid": "version-banner", hidden: true },
      h("span", {}, "New version available — reload to update."),
      " ",
      reload,
    );

    this.syncCount = h("span", { class: "count", "data-testid": "sync-count" });
    this.syncDetail = h("span", { class: "detail", "data-testid": "sync-detail" });
    const syncNow = h("button", { type: "button", "data-testid": "sync-now" }, "Sync now");
    syncNow.addEventListener("click", () => void this.engine.syncNow());
    this.syncNow = syncNow;
    this.syncBanner = h(
      "div",
      {
        class: "banner sync",
        role: "status",
        "aria-live": "polite",
        "data-testid": "sync-banner",
        hidden: true,
      },
      h("span", { class: "what" }, this.syncCount, " ", this.syncDetail),
      syncNow,
    );

    this.attentionList = h("ul", { class: "attention-list" });
    this.attention = h(
      "section",
      {
        class: "attention",
        "aria-labelledby": "attention-heading",
        "data-testid": "needs-attention",
        hidden: true,
      },
      h("h2", { id: "attention-heading" }, "Needs attention"),
      this.attentionList,
    );

    const newTitle = h("input", {
      id: "new-title",
      name: "title",
      type: "text",
      required: true,
      maxlength: 500,
      autocomplete: "off",
      "data-testid": "new-task-input",
      placeholder: "What needs doing?",
    });
    const form = h(
      "form",
      { class: "new-task", "data-testid": "new-task-form" },
      h("label", { for: "new-title", class: "visually-hidden" }, "New task"),
      newTitle,
      h("button", { type: "submit", "data-testid": "new-task-add" }, "Add"),
    );
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const title = newTitle.value.trim();
      if (title === "") return;
      newTitle.value = "";
      void this.engine.createTask(title);
      newTitle.focus();
    });

    this.list = h("ul", { class: "tasks", "aria-label": "Tasks", "data-testid": "task-list" });
    this.empty = h("p", { class: "empty", "data-testid": "empty" }, "No tasks yet.");
    this.errorLine = h("p", {
      class: "error",
      role: "status",
      "data-testid": "last-error",
      hidden: true,
    });

    const main = h(
      "main",
      {},
      this.versionBanner,
      this.syncBanner,
      this.attention,
      form,
      this.list,
      this.empty,
      this.errorLine,
      this.tokenPanel(),
    );
    this.root.replaceChildren(header, main);
    this.unsubscribe = this.engine.subscribe(() => this.render());
    this.render();
  }

  destroy(): void {
    this.unsubscribe();
  }

  private tokenPanel(): HTMLElement {
    const input = h("input", {
      id: "dev-token",
      type: "password",
      autocomplete: "off",
      "data-testid": "dev-token-input",
    });
    const form = h(
      "form",
      { class: "token", "data-testid": "dev-token-form" },
      h("label", { for: "dev-token" }, "Dev token"),
      input,
      h("button", { type: "submit", "data-testid": "dev-token-save" }, "Save token"),
      h(
        "p",
        { class: "hint" },
        "Mint one with ",
        h("code", {}, "uv run syncpipe token --tenant acme --user alice"),
        ".",
      ),
    );
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const token = input.value.trim();
      if (token !== "") this.options.saveToken(token);
      input.value = "";
    });
    const details = h(
      "details",
      { class: "settings", "data-testid": "settings" },
      h("summary", {}, "Connection settings"),
      form,
    );
    if (this.options.tokenSource === "none") details.open = true;
    return details;
  }

  render(): void {
    const status = this.engine.status();
    this.renderStatus(status);
    const tasks = this.engine.tasks();
    const seen = new Set<string>();
    let previous: Element | null = null;
    for (const task of tasks) {
      seen.add(task.id);
      let item = this.items.get(task.id);
      if (item === undefined) {
        item = new TaskItem(task, {
          setDone: (id, done) => void this.engine.setDone(id, done),
          setTitle: (id, title) => void this.engine.setTitle(id, title),
          remove: (id) => void this.engine.deleteTask(id),
          applyMineAgain: (opId) => void this.engine.applyMineAgain(opId),
          dismissConflict: (opId) => void this.engine.dismissConflict(opId),
        });
        this.items.set(task.id, item);
      } else {
        item.update(task);
      }
      const expected: Element | null =
        previous === null ? this.list.firstElementChild : previous.nextElementSibling;
      if (expected !== item.el) this.list.insertBefore(item.el, expected);
      previous = item.el;
    }
    for (const [id, item] of this.items) {
      if (!seen.has(id)) {
        item.el.remove();
        this.items.delete(id);
      }
    }
    show(this.empty, tasks.length === 0);
  }

  private renderStatus(status: EngineStatus): void {
    const label = status.online
      ? "Online"
      : status.push === "connecting"
        ? "Connecting…"
        : "Offline";
    setText(this.connection, label);
    this.connection.dataset.state = status.online ? "online" : "offline";

    show(this.versionBanner, status.versionMismatch !== null);
    show(this.syncBanner, status.waiting > 0);
    setText(this.syncCount, waitingText(status.waiting));
    const detail = waitingDetail(status);
    setText(this.syncDetail, detail);
    show(this.syncDetail, detail !== "");
    // Offline, nothing can be sent: the detail says so, and the button does not pretend.
    this.syncNow.disabled = !status.network;

    show(this.attention, status.failed.length > 0);
    const key = status.failed.map((r) => `${r.op.op_id}:${r.updated_at}`).join("|");
    if (this.attentionList.dataset.key !== key) {
      this.attentionList.dataset.key = key;
      this.attentionList.replaceChildren(...status.failed.map((r) => this.attentionItem(r)));
    }
    show(this.errorLine, status.lastError !== null);
    setText(this.errorLine, status.lastError ?? "");
  }

  private attentionItem(r: OutboxRecord): HTMLLIElement {
    const title =
      this.engine.tasks().find((t) => t.id === r.op.entity_id)?.title ??
      this.engine.outbox
        .list()
        .map((o) => (o.op.entity_id === r.op.entity_id ? o.op.fields?.title : undefined))
        .find((t): t is string => typeof t === "string");
    const what = describeOp(r.op, title);
    const retry = h(
      "button",
      { type: "button", "data-testid": "attention-retry", "aria-label": `Retry: ${what}` },
      "Retry",
    );
    retry.addEventListener("click", () => void this.engine.retry(r.op.op_id));
    const discard = h(
      "button",
      { type: "button", "data-testid": "attention-discard", "aria-label": `Discard: ${what}` },
      "Discard",
    );
    discard.addEventListener("click", () => void this.engine.discard(r.op.op_id));
    return h(
      "li",
      { "data-testid": "attention-item", "data-op-id": r.op.op_id },
      h("strong", {}, what),
      h(
        "span",
        { class: "reason", "data-testid": "attention-reason" },
        r.error?.message ?? "failed",
      ),
      h("span", { class: "actions" }, retry, discard),
    );
  }
}
