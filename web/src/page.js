// What every view of the page shares.

/** @param {string} text shown instead of the view's content (always as text) */
export function showMessage(text) {
  const message = document.getElementById("message");
  message.textContent = text;
  message.hidden = false;
}
