/* image/img_internal.h — what the image store's files share: the store
 * struct, digests, JSON blobs, the lock, errors. Not installed. */
#ifndef KUBUS_IMAGE_INTERNAL_H
#define KUBUS_IMAGE_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include <kubus/err.h>

#include "image.h"

#define IMG_REF_ANNOTATION "org.opencontainers.image.ref.name"
#define IMG_CONTAINERD_NAME "io.containerd.image.name"
#define MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define MT_OCI_LAYER_GZ "application/vnd.oci.image.layer.v1.tar+gzip"
#define MT_DOCKER_MANIFEST                                                     \
	"application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST                                                         \
	"application/vnd.docker.distribution.manifest.list.v2+json"

/* JSON blobs (index, manifest, config) larger than this are refused. */
#define IMG_JSON_MAX (8u << 20)

struct kb_image_store {
	char *dir;
};

/* A "sha256:<64 hex>" digest, checked. */
bool img_digest_valid(const char *d);
/* DIR/blobs/sha256/<hex> of a valid digest into out. */
void img_blob_path(const kb_image_store *st, const char *digest, char *out,
    size_t len);

/* SHA-256 in progress. */
struct img_hash {
	EVP_MD_CTX *md;
	int64_t n;
};
int img_hash_init(struct img_hash *h);
void img_hash_update(struct img_hash *h, const void *p, size_t n);
/* "sha256:<hex>" into out[80]; frees the context. */
void img_hash_final(struct img_hash *h, char out[80]);
void img_hash_free(struct img_hash *h);
void img_sha256(const void *p, size_t n, char out[80]);

/* err[errlen] = formatted reason; returns code. */
int img_err(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The whole file, at most max bytes (KB_EINVAL when larger). */
int img_read_file(const char *path, size_t max, char **out, size_t *n,
    char *err, size_t errlen);
/* Write data to path atomically (path.tmp, fsync, rename). */
int img_write_file(const char *path, const void *data, size_t n, char *err,
    size_t errlen);
/* Parse JSON text; an object is required. */
int img_json_parse(const char *text, size_t n, const char *what, json_t **out,
    char *err, size_t errlen);
/* Read a blob of the store as JSON, checking its digest. */
int img_blob_json(const kb_image_store *st, const char *digest, json_t **out,
    char *err, size_t errlen);
/* Store a blob from memory (no-op when present). */
int img_blob_put(kb_image_store *st, const void *data, size_t n,
    char digest[80], char *err, size_t errlen);

/* Remove path and everything below it (no symlinks followed). */
int img_rmrf_at(int dirfd, const char *name);
int img_rmrf(const char *path);
/* mkdir -p with mode. */
int img_mkdirs(const char *path, mode_t mode);

/* Take DIR/.lock (LOCK_SH or LOCK_EX): the fd, or -1 with err set. */
int img_lock(kb_image_store *st, int how, char *err, size_t errlen);
void img_unlock(int fd);

/* index.json of the store: {"manifests":[…]} (a new object when missing). */
int img_index_load(kb_image_store *st, json_t **out, char *err, size_t errlen);
int img_index_save(kb_image_store *st, json_t *index, char *err, size_t errlen);
/* The descriptor's normalised name annotation, or NULL. */
const char *img_desc_ref(json_t *desc);
/* Find the index entry for a normalised ref (name:tag or name@digest). */
json_t *img_index_find(json_t *index, const char *normref);
/* Point ref at the manifest descriptor mdesc (taken), replacing the
 * entry of the same ref. */
void img_index_put(json_t *index, const char *ref, json_t *mdesc);
/* Delete blobs and rootfs dirs no index entry reaches. Lock held (EX). */
int img_gc(kb_image_store *st, json_t *index, char *err, size_t errlen);
/* Remove DIR/tmp leftovers. Lock held (EX). */
void img_clean_tmp(kb_image_store *st);

/* Is this a manifest or an index media type we know? */
bool img_mt_manifest(const char *mt);
bool img_mt_index(const char *mt);
/* This machine's GOARCH name (amd64, arm64, …). */
const char *img_arch(void);

/* Unpack the layers of manifest into dir (which exists and is empty).
 * Lock held. */
int img_unpack(kb_image_store *st, json_t *manifest, const char *dir, char *err,
    size_t errlen);

/* A temporary dir under DIR/tmp (malloc'd path). */
char *img_tmpdir(kb_image_store *st, const char *tag, char *err, size_t errlen);

#endif
