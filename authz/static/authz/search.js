// The search box's live preview: as the admin types, what the question is understood as (the
// JSON of /admin/search/interpret), shown as the filters it will apply and the words it will not
// use. Submitting works without this script: the server interprets the same question.
// A file, not inline script: the portal's Content-Security-Policy runs no inline script.
"use strict";
{
    const WAIT_MS = 250;
    const NAMES = {
        tenant: "tenant", role: "role", permission: "permission", audience: "audience",
        subject: "user or group", validity: "validity", within_days: "within days",
        tenant_status: "tenant status",
    };

    function item(text, className) {
        const element = document.createElement("span");
        element.className = className;
        element.textContent = text;
        return element;
    }

    function show(preview, answer) {
        preview.replaceChildren();
        const understood = Object.entries(answer.filters || {});
        preview.append(item(`Lists ${answer.target}` + (understood.length ? ", where" : ", unfiltered"), "search-understood"));
        for (const [name, value] of understood) {
            const shown = Array.isArray(value) ? value.join(", ") : String(value);
            preview.append(item(`${NAMES[name] || name}: ${shown}`, "search-chip search-chip-preview"));
        }
        if ((answer.unmatched || []).length) {
            preview.append(item(`Not understood: ${answer.unmatched.join(", ")}`, "search-unmatched"));
        }
        if (answer.mode === "lexical") {
            preview.append(item("(by spelling only: the meaning model is off)", "search-mode"));
        }
        preview.hidden = false;
    }

    function attach(input) {
        const preview = input.form.querySelector(".portal-search-preview");
        let timer = null;
        let asked = 0;
        input.addEventListener("input", () => {
            clearTimeout(timer);
            const question = input.value.trim();
            if (!question) {
                preview.hidden = true;
                return;
            }
            timer = setTimeout(async () => {
                const mine = ++asked;
                try {
                    const url = `${input.dataset.interpret}?${new URLSearchParams({q: question})}`;
                    const response = await fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}});
                    if (response.ok && mine === asked) {
                        show(preview, await response.json());
                    }
                } catch (error) {
                    preview.hidden = true;  // the preview is a help; the form still works
                }
            }, WAIT_MS);
        });
    }

    document.addEventListener("DOMContentLoaded", () => {
        document.querySelectorAll("input[data-interpret]").forEach(attach);
    });
}
