// Photos for a form: each picture chosen (or taken) is turned upright, scaled to at most
// 1600 pixels on its long side and re-encoded as a JPEG on the phone, then sent alone to
// /console/photos with the session's CSRF token in a header. The ids that come back go in the
// form's hidden field; the form is held back while a photo is still on its way.
(function () {
  "use strict";
  var LONG_SIDE = 1600, QUALITY = 0.8;

  function shrink(file) {
    return createImageBitmap(file, { imageOrientation: "from-image" }).then(function (bmp) {
      var scale = Math.min(1, LONG_SIDE / Math.max(bmp.width, bmp.height));
      var canvas = document.createElement("canvas");
      canvas.width = Math.round(bmp.width * scale);
      canvas.height = Math.round(bmp.height * scale);
      canvas.getContext("2d").drawImage(bmp, 0, 0, canvas.width, canvas.height);
      bmp.close();
      return new Promise(function (done, fail) {
        canvas.toBlob(function (blob) {
          if (blob) { done(blob); } else { fail(new Error("could not encode")); }
        }, "image/jpeg", QUALITY);
      });
    });
  }

  function send(form, blob) {
    var token = form.querySelector("input[name=csrf]").value;
    return fetch("/console/photos", {
      method: "POST", body: blob, credentials: "same-origin",
      headers: { "Content-Type": "image/jpeg", "X-CSRF-Token": token }
    }).then(function (r) {
      if (r.status === 401) { location.href = "/console/login"; }
      if (!r.ok) { return r.text().then(function (t) { throw new Error(t); }); }
      return r.json();
    });
  }

  document.querySelectorAll("input[type=file][data-photos]").forEach(function (input) {
    var form = input.form, field = form.querySelector("input[name=" + input.dataset.photos + "]");
    var thumbs = input.closest("p").nextElementSibling, busy = 0;
    var max = parseInt(input.dataset.max, 10) || 6;
    form.addEventListener("submit", function (ev) {
      if (busy > 0) { ev.preventDefault(); alert("照片上传中 Photos still uploading"); }
    });
    input.addEventListener("change", function () {
      Array.prototype.slice.call(input.files).forEach(function (file) {
        var ids = field.value ? field.value.split(",") : [];
        if (ids.length + busy >= max) { return; }
        busy += 1;
        form.dataset.uploading = String(busy);
        shrink(file).then(function (blob) { return send(form, blob); }).then(function (got) {
          ids = field.value ? field.value.split(",") : [];
          ids.push(got.id);
          field.value = ids.join(",");
          var img = document.createElement("img");
          img.src = got.url;
          img.alt = "photo";
          thumbs.appendChild(img);
        }).catch(function (err) {
          alert("照片未上传 Photo not sent: " + err.message);
        }).then(function () {
          busy -= 1;
          form.dataset.uploading = String(busy);
        });
      });
      input.value = "";
    });
  });
})();
