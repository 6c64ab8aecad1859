// Small DOM helpers of the page.

/** The element matching `selector` (the page's own markup: a missing one is a bug). */
export function $(selector: string): HTMLElement {
  const e = document.querySelector<HTMLElement>(selector);
  if (e === null) throw new Error(`page: no ${selector}`);
  return e;
}

/** A new element with attributes and children (text children are text nodes: no HTML parsing). */
export function el(tag: string, attrs: Record<string, string>, children: (Node | string)[] = []): HTMLElement {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== "") e.setAttribute(k, v);
  for (const c of children) e.append(typeof c === "string" ? document.createTextNode(c) : c);
  return e;
}

/** The status line. */
export function setStatus(text: string): void {
  $("[data-testid=status]").textContent = text;
}

/** A failure as one line (its name and message; never a payload). */
export function errorText(e: unknown): string {
  if (e === "" || e === undefined) return "";
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
