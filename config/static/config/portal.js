// The portal's copy buttons: each copies its data-copy value whole (a list shows ids shortened).
// A file, not inline script: the portal's Content-Security-Policy runs no inline script.
"use strict";
{
    const DONE_FOR_MS = 2000;

    async function copy(button) {
        const label = button.textContent;
        try {
            await navigator.clipboard.writeText(button.dataset.copy);
            button.textContent = "Copied";
        } catch (error) {
            button.textContent = "Copy failed";
        }
        setTimeout(() => { button.textContent = label; }, DONE_FOR_MS);
    }

    document.addEventListener("click", (event) => {
        const button = event.target.closest("button.copy-id");
        if (button) {
            event.preventDefault();  // never submits the list's form
            copy(button);
        }
    });
}
