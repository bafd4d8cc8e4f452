/** One task row: keyed, updated in place so focus and an open edit survive re-renders. */
import type { TaskView } from "../sync/engine";
import { h, setText, show } from "./dom";

export interface TaskActions {
  setDone(id: string, done: boolean): void;
  setTitle(id: string, title: string): void;
  remove(id: string): void;
  applyMineAgain(opId: string): void;
  dismissConflict(opId: string): void;
}

export class TaskItem {
  readonly el: HTMLLIElement;
  private task: TaskView;
  private readonly checkbox: HTMLInputElement;
  private readonly title: HTMLSpanElement;
  private readonly unsynced: HTMLSpanElement;
  private readonly editButton: HTMLButtonElement;
  private readonly deleteButton: HTMLButtonElement;
  private readonly view: HTMLDivElement;
  private readonly editForm: HTMLFormElement;
  private readonly editInput: HTMLInputElement;
  private readonly hints: HTMLDivElement;

  constructor(
    task: TaskView,
    private readonly actions: TaskActions,
  ) {
    this.task = task;
    const inputId = `done-${task.id}`;
    this.checkbox = h("input", { type: "checkbox", id: inputId, "data-testid": "task-done" });
    this.checkbox.addEventListener("change", () =>
      this.actions.setDone(this.task.id, this.checkbox.checked),
    );
    this.title = h("span", { class: "task-title", "data-testid": "task-title" });
    this.unsynced = h(
      "span",
      { class: "unsynced", "data-testid": "task-unsynced", title: "Not synced yet" },
      "not synced",
    );
    this.editButton = h(
      "button",
      { type: "button", class: "icon", "data-testid": "task-edit" },
      "Edit",
    );
    this.editButton.addEventListener("click", () => this.startEdit());
    this.deleteButton = h(
      "button",
      { type: "button", class: "icon danger", "data-testid": "task-delete" },
      "Delete",
    );
    this.deleteButton.addEventListener("click", () => this.actions.remove(this.task.id));
    const label = h("label", { for: inputId, class: "task-label" }, this.title);
    // "not synced" sits under the title, so on a phone the title keeps the row's width.
    const text = h("div", { class: "task-text" }, label, this.unsynced);
    this.view = h(
      "div",
      { class: "task-view" },
      this.checkbox,
      text,
      this.editButton,
      this.deleteButton,
    );

    this.editInput = h("input", {
      type: "text",
      "data-testid": "task-edit-input",
      required: true,
      maxlength: 500,
    });
    const cancel = h("button", { type: "button", "data-testid": "task-edit-cancel" }, "Cancel");
    cancel.addEventListener("click", () => this.stopEdit());
    this.editForm = h(
      "form",
      { class: "task-edit", "data-testid": "task-edit-form", hidden: true },
      this.editInput,
      h("button", { type: "submit", "data-testid": "task-edit-save" }, "Save"),
      cancel,
    );
    this.editForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const value = this.editInput.value.trim();
      if (value !== "" && value !== this.task.title) this.actions.setTitle(this.task.id, value);
      this.stopEdit();
    });
    this.editInput.addEventListener("keydown", (ev) => {
      if (ev.key === "Escape") {
        ev.preventDefault();
        this.stopEdit();
      }
    });

    this.hints = h("div", { class: "hints" });
    this.el = h(
      "li",
      { class: "task", "data-testid": "task", "data-task-id": task.id },
      this.view,
      this.editForm,
      this.hints,
    );
    this.update(task);
  }

  get editing(): boolean {
    return !this.editForm.hidden;
  }

  update(task: TaskView): void {
    this.task = task;
    const name = task.title || "untitled task";
    this.checkbox.checked = task.done;
    this.checkbox.disabled = task.deleted;
    this.checkbox.setAttribute("aria-label", `Done: ${name}`);
    setText(this.title, task.title);
    this.el.classList.toggle("done", task.done);
    this.el.classList.toggle("deleted", task.deleted);
    this.el.dataset.unsynced = String(task.unsynced);
    show(this.unsynced, task.unsynced);
    show(this.editButton, !task.deleted);
    show(this.deleteButton, !task.deleted);
    this.editButton.setAttribute("aria-label", `Edit ${name}`);
    this.deleteButton.setAttribute("aria-label", `Delete ${name}`);
    this.editInput.setAttribute("aria-label", `Title of ${name}`);
    this.renderHints(task);
  }

  private renderHints(task: TaskView): void {
    const key = task.conflicts.map((c) => `${c.opId}:${c.kept}`).join("|");
    if (this.hints.dataset.key === key) return;
    this.hints.dataset.key = key;
    this.hints.replaceChildren(
      ...task.conflicts.map((c) => {
        const again = h(
          "button",
          { type: "button", class: "link", "data-testid": "conflict-apply-mine" },
          "Apply mine again",
        );
        again.addEventListener("click", () => this.actions.applyMineAgain(c.opId));
        const dismiss = h(
          "button",
          { type: "button", class: "link", "data-testid": "conflict-dismiss" },
          "Dismiss",
        );
        dismiss.addEventListener("click", () => this.actions.dismissConflict(c.opId));
        return h(
          "p",
          { class: "conflict", role: "note", "data-testid": "conflict-hint", "data-op-id": c.opId },
          h("span", { "data-testid": "conflict-text" }, `kept ${c.kept} from another device`),
          " · ",
          again,
          " · ",
          dismiss,
        );
      }),
    );
  }

  private startEdit(): void {
    this.editInput.value = this.task.title;
    this.view.hidden = true;
    this.editForm.hidden = false;
    this.editInput.focus();
    this.editInput.select();
  }

  private stopEdit(): void {
    this.editForm.hidden = true;
    this.view.hidden = false;
    this.editButton.focus();
  }
}
