// django-celery-beat's periodic-task form: show the chosen crontab in words under its help text.
// A file rather than the library's inline script, which the portal's Content-Security-Policy blocks.
"use strict";
{
    const $ = django.jQuery;
    const help = document.getElementById("periodic-task-overrides").dataset.crontabHelp;
    const readableCrontabs = JSON.parse(document.getElementById("readable-crontabs").textContent);

    $(".field-crontab_translation").hide();
    $(".field-crontab").change(function () {
        const translation = readableCrontabs[$("#id_crontab").val()];
        // Text nodes, never HTML: a crontab's description is data.
        $(".field-crontab .help")
            .empty()
            .append(document.createTextNode(help), document.createElement("br"))
            .append(document.createTextNode(`Translation: ${translation}`));
    });
}
