/**
 * Building and updating elements. Every value from the API reaches the page through
 * textContent, never as markup: user, feature and model names are caller-controlled.
 */

export const $ = (selector) => document.querySelector(selector);

/** An element with text (never HTML), classes and children. */
export function h(tag, props, ...children) {
  const node = document.createElement(tag);
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null) continue;
      if (key === 'class') node.className = value;
      else if (key === 'text') node.textContent = value;
      else if (key === 'title') node.title = value;
      else if (key === 'width') node.style.width = value;
      else if (key === 'color') node.style.background = value;
      else node.setAttribute(key, value);
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const empty = (text) => h('p', { class: 'empty', text });

export function setStatus(kind, text) {
  const status = $('#status');
  status.className = `status ${kind}`;
  status.textContent = text;
}

export function setNotice(text) {
  const notice = $('#notice');
  notice.hidden = !text;
  notice.textContent = text || '';
}
