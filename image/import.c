/* image/import.c — images into the store from an OCI layout directory or
 * an oci-archive tar (gzip'd or not). Every blob is checked against its
 * digest and size before it enters blobs/; manifest lists pick this
 * machine's linux platform. A tar's blobs stream straight into the store;
 * whatever no image ends up using is collected at the end. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "img_internal.h"

struct source {
	kb_image_store *st;
	const char *path;
	bool archive; /* blobs already streamed into the store */
	char *err;
	size_t errlen;
};

/* Copy fd into the store as blob `want` (NULL: any), verifying it. */
static int blob_from_fd(kb_image_store *st, int in, const char *want,
    int64_t want_size, char got[80], char *err, size_t errlen)
{
	char tmp[4200], path[4200];
	snprintf(tmp, sizeof(tmp), "%s/tmp/blob-XXXXXX", st->dir);
	int out = mkstemp(tmp);
	if (out < 0)
		return img_err(err, errlen, KB_ESYS, "%s: %s", tmp,
		    strerror(errno));
	struct img_hash h;
	int rc = img_hash_init(&h);
	if (rc) {
		close(out);
		unlink(tmp);
		return img_err(err, errlen, rc, "out of memory");
	}
	char *buf = malloc(1 << 16);
	for (;;) {
		ssize_t n = buf ? read(in, buf, 1 << 16) : -1;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = img_err(err, errlen, KB_ESYS, "read: %s",
			    strerror(buf ? errno : ENOMEM));
			break;
		}
		if (n == 0)
			break;
		img_hash_update(&h, buf, (size_t)n);
		for (ssize_t o = 0; o < n;) {
			ssize_t w = write(out, buf + o, (size_t)(n - o));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				rc = img_err(err, errlen, KB_ESYS, "%s: %s",
				    tmp, strerror(errno));
				break;
			}
			o += w;
		}
		if (rc)
			break;
	}
	free(buf);
	int64_t size = h.n;
	img_hash_final(&h, got);
	close(out);
	if (rc == 0 && want && strcmp(got, want) != 0)
		rc = img_err(err, errlen, KB_EINVAL,
		    "blob %s: digest mismatch (content is %s)", want, got);
	if (rc == 0 && want_size >= 0 && size != want_size)
		rc = img_err(err, errlen, KB_EINVAL,
		    "blob %s: %lld bytes, the descriptor says %lld", got,
		    (long long)size, (long long)want_size);
	if (rc == 0) {
		img_blob_path(st, got, path, sizeof(path));
		if (rename(tmp, path) != 0)
			rc = img_err(err, errlen, KB_ESYS, "%s: %s", path,
			    strerror(errno));
	}
	if (rc)
		unlink(tmp);
	return rc;
}

/* Make sure the blob of desc is in the store, checked. */
static int fetch(struct source *s, json_t *desc)
{
	const char *dg = json_string_value(json_object_get(desc, "digest"));
	json_t *jsize = json_object_get(desc, "size");
	int64_t size = json_is_integer(jsize) ? json_integer_value(jsize) : -1;
	char path[4200];
	struct stat sb;
	if (!img_digest_valid(dg))
		return img_err(s->err, s->errlen, KB_EINVAL,
		    "%s: descriptor with a bad or unsupported digest \"%s\"",
		    s->path, dg ? dg : "");
	img_blob_path(s->st, dg, path, sizeof(path));
	if (stat(path, &sb) == 0) {
		if (size >= 0 && sb.st_size != size)
			return img_err(s->err, s->errlen, KB_EINVAL,
			    "blob %s: %lld bytes, the descriptor says %lld", dg,
			    (long long)sb.st_size, (long long)size);
		return 0;
	}
	if (s->archive)
		return img_err(s->err, s->errlen, KB_EINVAL,
		    "%s: blob %s is missing from the archive", s->path, dg);
	char src[4200], got[80];
	snprintf(src, sizeof(src), "%s/blobs/sha256/%s", s->path, dg + 7);
	int fd = open(src, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return img_err(s->err, s->errlen, KB_EINVAL, "%s: %s", src,
		    strerror(errno));
	int rc = blob_from_fd(s->st, fd, dg, size, got, s->err, s->errlen);
	close(fd);
	return rc;
}

static int fetch_json(struct source *s, json_t *desc, json_t **out)
{
	int rc = fetch(s, desc);
	if (rc)
		return rc;
	return img_blob_json(s->st,
	    json_string_value(json_object_get(desc, "digest")), out, s->err,
	    s->errlen);
}

/* An image index: the descriptor for linux/<this arch>. Borrowed from idx. */
static json_t *pick_platform(json_t *idx)
{
	const char *arch = img_arch();
	json_t *d;
	size_t i;
	json_array_foreach(json_object_get(idx, "manifests"), i, d) {
		json_t *p = json_object_get(d, "platform");
		const char *os = json_string_value(json_object_get(p, "os"));
		const char *ar =
		    json_string_value(json_object_get(p, "architecture"));
		if (os && ar && !strcmp(os, "linux") && !strcmp(ar, arch) &&
		    img_mt_manifest(
			json_string_value(json_object_get(d, "mediaType"))))
			return d;
	}
	return NULL;
}

/* The manifest of desc with its config and layers into the store. *mdesc
 * gets the manifest's descriptor (a new reference). */
static int import_one(struct source *s, json_t *desc, json_t **mdesc)
{
	const char *mt = json_string_value(json_object_get(desc, "mediaType"));
	json_t *idx = NULL, *man = NULL;
	int rc;
	if (img_mt_index(mt)) {
		if ((rc = fetch_json(s, desc, &idx)) != 0)
			return rc;
		json_t *d = pick_platform(idx);
		if (d == NULL) {
			json_decref(idx);
			return img_err(s->err, s->errlen, KB_EINVAL,
			    "%s: index %s has no linux/%s manifest", s->path,
			    json_string_value(json_object_get(desc, "digest")),
			    img_arch());
		}
		desc = d;
		mt = json_string_value(json_object_get(desc, "mediaType"));
	}
	if (mt && !img_mt_manifest(mt)) {
		json_decref(idx);
		return img_err(s->err, s->errlen, KB_EINVAL,
		    "%s: unsupported media type %s", s->path, mt);
	}
	if ((rc = fetch_json(s, desc, &man)) != 0)
		goto out;
	json_t *cfg = json_object_get(man, "config"),
	       *layers = json_object_get(man, "layers"), *l;
	if (!json_is_object(cfg) || !json_is_array(layers)) {
		rc = img_err(s->err, s->errlen, KB_EINVAL,
		    "%s: manifest %s has no config or layers", s->path,
		    json_string_value(json_object_get(desc, "digest")));
		goto out;
	}
	if ((rc = fetch(s, cfg)) != 0)
		goto out;
	size_t i;
	json_array_foreach(layers, i, l)
		if ((rc = fetch(s, l)) != 0)
			goto out;
	const char *mmt = json_string_value(json_object_get(man, "mediaType"));
	*mdesc = json_pack("{s:s,s:O,s:O}", "mediaType",
	    mt      ? mt :
		mmt ? mmt :
		      MT_OCI_MANIFEST,
	    "digest", json_object_get(desc, "digest"), "size",
	    json_object_get(desc, "size"));
	if (*mdesc == NULL)
		rc = img_err(s->err, s->errlen, KB_EINVAL,
		    "%s: manifest descriptor without digest or size", s->path);
out:
	json_decref(man);
	json_decref(idx);
	return rc;
}

static int import_index(struct source *s, json_t *srcidx, const char *as,
    struct kb_image_info **out, size_t *nout)
{
	json_t *mans = json_object_get(srcidx, "manifests"), *d;
	size_t n = json_array_size(mans), i;
	if (!json_is_array(mans) || n == 0)
		return img_err(s->err, s->errlen, KB_EINVAL,
		    "%s: index.json lists no images", s->path);
	if (as && n != 1)
		return img_err(s->err, s->errlen, KB_EINVAL,
		    "%s: --as needs exactly one image, this has %zu", s->path,
		    n);
	json_t *index;
	int rc = img_index_load(s->st, &index, s->err, s->errlen);
	if (rc)
		return rc;
	struct kb_image_info *v = calloc(n, sizeof(*v));
	if (v == NULL) {
		json_decref(index);
		return img_err(s->err, s->errlen, KB_ENOMEM, "out of memory");
	}
	size_t k = 0;
	json_array_foreach(mans, i, d) {
		json_t *ann = json_object_get(d, "annotations");
		const char *name = as;
		if (name == NULL)
			name = json_string_value(
			    json_object_get(ann, IMG_CONTAINERD_NAME));
		if (name == NULL)
			name = json_string_value(
			    json_object_get(ann, IMG_REF_ANNOTATION));
		if (name == NULL) {
			rc = img_err(s->err, s->errlen, KB_EINVAL,
			    "%s: image %zu has no name (no %s annotation): use --as",
			    s->path, i + 1, IMG_REF_ANNOTATION);
			break;
		}
		if (kb_image_normalize(name, v[k].ref, sizeof(v[k].ref)) != 0) {
			rc = img_err(s->err, s->errlen, KB_EINVAL,
			    "%s: \"%s\" is not a valid image reference",
			    s->path, name);
			break;
		}
		json_t *mdesc = NULL;
		if ((rc = import_one(s, d, &mdesc)) != 0)
			break;
		snprintf(v[k].digest, sizeof(v[k].digest), "%s",
		    json_string_value(json_object_get(mdesc, "digest")));
		v[k].size = json_integer_value(json_object_get(mdesc, "size"));
		img_index_put(index, v[k].ref, mdesc);
		k++;
	}
	if (rc == 0)
		rc = img_index_save(s->st, index, s->err, s->errlen);
	json_decref(index);
	if (rc || out == NULL) {
		free(v);
		return rc;
	}
	*out = v;
	*nout = k;
	return 0;
}

static int import_dir(struct source *s, const char *as,
    struct kb_image_info **out, size_t *n)
{
	char path[4200], *buf;
	size_t len;
	json_t *lay, *idx;
	snprintf(path, sizeof(path), "%s/oci-layout", s->path);
	int rc =
	    img_read_file(path, IMG_JSON_MAX, &buf, &len, s->err, s->errlen);
	if (rc)
		return img_err(s->err, s->errlen, KB_EINVAL,
		    "%s: not an OCI image layout (no oci-layout file)",
		    s->path);
	rc = img_json_parse(buf, len, path, &lay, s->err, s->errlen);
	free(buf);
	if (rc)
		return rc;
	json_decref(lay);
	snprintf(path, sizeof(path), "%s/index.json", s->path);
	if ((rc = img_read_file(path, IMG_JSON_MAX, &buf, &len, s->err,
		 s->errlen)) != 0)
		return rc == KB_ENOTFOUND ? KB_EINVAL : rc;
	rc = img_json_parse(buf, len, path, &idx, s->err, s->errlen);
	free(buf);
	if (rc)
		return rc;
	rc = import_index(s, idx, as, out, n);
	json_decref(idx);
	return rc;
}

/* The archive entry's data into the store as blob want. */
static int archive_blob(struct source *s, struct archive *a, const char *want)
{
	char tmp[4200], path[4200], got[80];
	img_blob_path(s->st, want, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s/tmp/blob-XXXXXX", s->st->dir);
	int out = mkstemp(tmp);
	if (out < 0)
		return img_err(s->err, s->errlen, KB_ESYS, "%s: %s", tmp,
		    strerror(errno));
	struct img_hash h;
	int rc = img_hash_init(&h);
	if (rc) {
		close(out);
		unlink(tmp);
		return img_err(s->err, s->errlen, rc, "out of memory");
	}
	char *buf = malloc(1 << 16);
	la_ssize_t n;
	while (buf && (n = archive_read_data(a, buf, 1 << 16)) > 0) {
		img_hash_update(&h, buf, (size_t)n);
		for (la_ssize_t o = 0; o < n && rc == 0;) {
			ssize_t w = write(out, buf + o, (size_t)(n - o));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0)
				rc = img_err(s->err, s->errlen, KB_ESYS,
				    "%s: %s", tmp, strerror(errno));
			else
				o += w;
		}
		if (rc)
			break;
	}
	if (buf == NULL)
		rc = img_err(s->err, s->errlen, KB_ENOMEM, "out of memory");
	else if (rc == 0 && n < 0)
		rc = img_err(s->err, s->errlen, KB_EINVAL, "%s: %s", s->path,
		    archive_error_string(a) ?: "bad tar");
	free(buf);
	img_hash_final(&h, got);
	close(out);
	if (rc == 0 && strcmp(got, want) != 0)
		rc = img_err(s->err, s->errlen, KB_EINVAL,
		    "%s: blob %s: digest mismatch (content is %s)", s->path,
		    want, got);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = img_err(s->err, s->errlen, KB_ESYS, "%s: %s", path,
		    strerror(errno));
	if (rc)
		unlink(tmp);
	return rc;
}

static int import_archive(struct source *s, const char *as,
    struct kb_image_info **out, size_t *n)
{
	struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	json_t *idx = NULL;
	bool layout = false;
	int rc = 0, ar;
	if (archive_read_open_filename(a, s->path, 1 << 16) != ARCHIVE_OK) {
		rc = img_err(s->err, s->errlen, KB_EINVAL, "%s: %s", s->path,
		    archive_error_string(a) ?: "not a tar archive");
		goto out;
	}
	struct archive_entry *e;
	while ((ar = archive_read_next_header(a, &e)) == ARCHIVE_OK ||
	    ar == ARCHIVE_WARN) {
		const char *p = archive_entry_pathname(e);
		if (p == NULL || archive_entry_filetype(e) != AE_IFREG)
			continue;
		while (!strncmp(p, "./", 2))
			p += 2;
		if (!strcmp(p, "oci-layout")) {
			layout = true;
		} else if (!strcmp(p, "index.json")) {
			la_int64_t sz = archive_entry_size(e);
			if (sz < 0 || sz > (la_int64_t)IMG_JSON_MAX) {
				rc = img_err(s->err, s->errlen, KB_EINVAL,
				    "%s: index.json too large", s->path);
				goto out;
			}
			char *buf = malloc((size_t)sz + 1);
			la_ssize_t got =
			    buf ? archive_read_data(a, buf, (size_t)sz) : -1;
			if (got != sz) {
				free(buf);
				rc = img_err(s->err, s->errlen, KB_EINVAL,
				    "%s: index.json: %s", s->path,
				    archive_error_string(a) ?: "short read");
				goto out;
			}
			json_decref(idx);
			idx = NULL;
			rc = img_json_parse(buf, (size_t)sz, "index.json", &idx,
			    s->err, s->errlen);
			free(buf);
			if (rc)
				goto out;
		} else if (!strncmp(p, "blobs/", 6)) {
			char dg[80];
			const char *alg = p + 6, *slash = strchr(alg, '/');
			if (slash == NULL)
				continue;
			snprintf(dg, sizeof(dg), "%.*s:%s", (int)(slash - alg),
			    alg, slash + 1);
			if (!img_digest_valid(dg))
				continue; /* an algorithm we do not use: unused */
			if ((rc = archive_blob(s, a, dg)) != 0)
				goto out;
		}
	}
	if (ar != ARCHIVE_EOF) {
		rc = img_err(s->err, s->errlen, KB_EINVAL, "%s: %s", s->path,
		    archive_error_string(a) ?: "bad tar");
		goto out;
	}
	if (!layout || idx == NULL) {
		rc = img_err(s->err, s->errlen, KB_EINVAL,
		    "%s: not an oci-archive (no %s)", s->path,
		    layout ? "index.json" : "oci-layout");
		goto out;
	}
	rc = import_index(s, idx, as, out, n);
out:
	json_decref(idx);
	archive_read_free(a);
	return rc;
}

int kb_image_import_refs(kb_image_store *st, const char *path, const char *as,
    struct kb_image_info **out, size_t *n, char *err, size_t errlen)
{
	if (out) {
		*out = NULL;
		*n = 0;
	}
	if (as && kb_image_normalize(as, (char[512]){ 0 }, 512) != 0)
		return img_err(err, errlen, KB_EINVAL,
		    "\"%s\" is not a valid image reference", as);
	struct stat sb;
	if (path == NULL || stat(path, &sb) != 0)
		return img_err(err, errlen, KB_ENOTFOUND, "%s: %s",
		    path ? path : "(null)", strerror(path ? errno : EINVAL));
	int fd = img_lock(st, LOCK_EX, err, errlen);
	if (fd < 0)
		return KB_ESYS;
	img_clean_tmp(st);
	struct source s = {
		.st = st,
		.path = path,
		.archive = !S_ISDIR(sb.st_mode),
		.err = err,
		.errlen = errlen,
	};
	int rc = s.archive ? import_archive(&s, as, out, n) :
			     import_dir(&s, as, out, n);
	/* Blobs a failed (or partly unused) import left behind go. */
	json_t *index;
	if (img_index_load(st, &index, NULL, 0) == 0) {
		img_gc(st, index, NULL, 0);
		json_decref(index);
	}
	img_unlock(fd);
	return rc;
}

int kb_image_import(kb_image_store *st, const char *path, const char *as,
    char *err, size_t errlen)
{
	return kb_image_import_refs(st, path, as, NULL, NULL, err, errlen);
}
