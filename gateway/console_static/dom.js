// Building DOM nodes without innerHTML: every value from the API is set as text, never parsed as HTML.
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function statusBadge(status, testid) {
  return el("span", { class: `status status-${status}`, "data-testid": testid }, status);
}

export function bar(done, total, state = "") {
  const percent = total ? Math.min(100, Math.round((100 * done) / total)) : 0;
  const span = el("span");
  span.style.width = `${percent}%`;
  return el("div", { class: `bar ${state}`, title: `${done} / ${total}` }, span);
}

export function ms(value) {
  if (value === null || value === undefined) return "–";
  if (value < 1000) return `${Math.round(value)} ms`;
  if (value < 60000) return `${(value / 1000).toFixed(1)} s`;
  return `${Math.floor(value / 60000)} min ${Math.round((value % 60000) / 1000)} s`;
}

export function since(iso, until = null) {
  if (!iso) return null;
  return (until ? Date.parse(until) : Date.now()) - Date.parse(iso);
}
