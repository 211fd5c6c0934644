// Smart paste on the add-grant page: the pasted request goes to /admin/search/paste (POST, with the
// page's CSRF token); the fields it proposes are filled in and marked for review (a class and a
// note the field names in aria-describedby). Nothing is saved: the admin checks the form and saves.
// A file, not inline script: the portal's Content-Security-Policy runs no inline script.
"use strict";
{
    const NAMES = {
        tenant: "tenant", role: "role", subject_type: "subject type", provider: "identity provider",
        subject_id: "subject id", valid_from_0: "valid from (date)", valid_from_1: "valid from (time)",
        valid_until_0: "valid until (date)", valid_until_1: "valid until (time)", reason: "reason",
    };

    function choose(select, value, label) {
        let option = Array.from(select.options).find((o) => o.value === value);
        if (!option && select.classList.contains("admin-autocomplete")) {
            option = new Option(label, value, false, false);  // autocomplete lists hold only the chosen one
            select.append(option);
        }
        if (!option) {
            return false;
        }
        select.value = value;
        return true;
    }

    function mark(element, name) {
        const row = element.closest(".form-row") || element.parentElement;
        row.classList.add("smart-filled");
        const noteId = `smart-note-${name}`;
        if (!document.getElementById(noteId)) {
            const note = document.createElement("span");
            note.id = noteId;
            note.className = "smart-filled-note";
            note.textContent = "Filled from the pasted text: check it before saving.";
            // After the whole widget (an autocomplete's box and its buttons), not inside it.
            (element.closest(".related-widget-wrapper") || element).insertAdjacentElement("afterend", note);
        }
        const described = (element.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
        if (!described.includes(noteId)) {
            element.setAttribute("aria-describedby", [...described, noteId].join(" "));
        }
    }

    function fill(name, value) {
        const element = document.getElementById(`id_${name}`);
        if (!element) {
            return false;
        }
        if (element.tagName === "SELECT") {
            const done = typeof value === "object" ? choose(element, value.value, value.label) : choose(element, value, value);
            if (!done) {
                return false;
            }
        } else {
            element.value = value;
        }
        element.dispatchEvent(new Event("change", {bubbles: true}));
        mark(element, name);
        return true;
    }

    function list(title, items) {
        const block = document.createElement("div");
        const heading = document.createElement("strong");
        heading.textContent = title;
        const entries = document.createElement("ul");
        for (const text of items) {
            const entry = document.createElement("li");
            entry.textContent = text;
            entries.append(entry);
        }
        block.append(heading, entries);
        return block;
    }

    function report(result, answer) {
        result.replaceChildren();
        const filled = [];
        const skipped = [];
        for (const [name, value] of Object.entries(answer.fields || {})) {
            const shown = typeof value === "object" ? value.label : value;
            (fill(name, value) ? filled : skipped).push(`${NAMES[name] || name}: ${shown}`);
        }
        result.append(list(filled.length ? "Filled, marked for your review (nothing is saved until you save):" : "Nothing could be filled.", filled));
        if (skipped.length) {
            result.append(list("Proposed but not offered by this form:", skipped));
        }
        if ((answer.notes || []).length) {
            result.append(list("Notes:", answer.notes));
        }
        if ((answer.unused || []).length) {
            result.append(list("Not used from the text:", [answer.unused.join(", ")]));
        }
    }

    async function paste(panel) {
        const text = panel.querySelector("textarea").value;
        const result = panel.querySelector(".smart-paste-result");
        const button = panel.querySelector("button");
        const token = document.querySelector("input[name=csrfmiddlewaretoken]");
        button.disabled = true;
        try {
            const response = await fetch(panel.dataset.paste, {
                method: "POST",
                credentials: "same-origin",
                headers: {"X-CSRFToken": token ? token.value : "", Accept: "application/json"},
                body: new URLSearchParams({text}),
            });
            const answer = await response.json();
            if (!response.ok) {
                result.replaceChildren(list("Could not read the text:", [answer.error || response.statusText]));
                return;
            }
            report(result, answer);
        } catch (error) {
            result.replaceChildren(list("Could not read the text:", ["the portal did not answer; try again"]));
        } finally {
            button.disabled = false;
        }
    }

    document.addEventListener("DOMContentLoaded", () => {
        const panel = document.querySelector(".smart-paste[data-paste]");
        if (!panel) {
            return;
        }
        panel.hidden = false;  // without script the panel stays hidden: it cannot work there
        panel.querySelector("button").addEventListener("click", () => paste(panel));
        document.addEventListener("change", (event) => {
            // A field the admin changes themselves is reviewed: its mark goes.
            if (event.isTrusted) {
                const row = event.target.closest && event.target.closest(".smart-filled");
                if (row) {
                    row.classList.remove("smart-filled");
                }
            }
        });
    });
}
