/* instances: what every operation on a managed instance shares: its
 * store records, its lock, its files and its admin secret. The HTTP
 * handlers (h_instances.c, h_acls.c) and the housekeeper build on these.
 *
 * Store layout:
 *   instances                set of ids
 *   instance:<id>            hash: spec (JSON), state, state_at, container_id,
 *                            ip, started_at, last_error, admin_secret (sealed)
 *   port:<port>              the id holding a host port
 *   aclusers:<id>            hash: username -> user record (JSON, see acl.h)
 *   acllines:<id>            hash: username -> the user's line of the ACL file
 *   lock:instance:<id>       per-instance lock (SET NX PX, compare-and-delete)
 *   instances:version        bumped by every write to any of the above that a
 *                            listing shows, so workers can keep a rendered list
 */
#ifndef VD_INSTANCES_H
#define VD_INSTANCES_H

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "error.h"
#include "handlers.h"
#include "instance.h"

#define VD_INST_LOCK_MS 120000
#define VD_INST_VERSION_KEY "instances:version"
#define VD_INST_ADMIN_PASSWORD_BYTES 24
#define VD_INST_ADMIN_PASSWORD_MAX (2 * VD_INST_ADMIN_PASSWORD_BYTES + 1)

struct vd_inst_lock {
	char key[96];
	char token[33];
	int held;
};

/* Store key prefix+id into out. */
void vd_inst_key(char *out, size_t outsz, const char *prefix, const char *id);

/* Takes the instance's lock, waiting up to wait_ms for another holder;
 * 409 instance_busy after that. Release is a compare-and-delete, so an
 * expired lock taken over by someone else is never released by us. */
int vd_inst_lock_take(struct vd_ctx *ctx, const char *id, int wait_ms, struct vd_inst_lock *lk,
    struct vd_error *err);
void vd_inst_lock_release(struct vd_ctx *ctx, struct vd_inst_lock *lk);

/* Extends a held lock to its full time before a long step; 409 when it
 * expired and someone else holds it now (the operation must not go on). */
int vd_inst_lock_renew(struct vd_ctx *ctx, struct vd_inst_lock *lk, struct vd_error *err);

/* instance:<id> as a JSON object of strings (new reference); 404 when
 * absent. */
json_t *vd_inst_record_load(struct vd_ctx *ctx, const char *id, struct vd_error *err);

/* The spec of a record (new reference), NULL when unreadable. */
json_t *vd_inst_record_spec(const json_t *rec);

/* Sets fields of instance:<id>: pairs of strings ending with NULL (and
 * bumps instances:version in the same step). */
int vd_inst_record_set(struct vd_ctx *ctx, const char *id, struct vd_error *err, ...);

/* Stores one ACL user's record and its rendered line together (user NULL:
 * removes both). */
int vd_inst_user_store(struct vd_ctx *ctx, const char *id, const char *name, const json_t *user,
    struct vd_error *err);

/* One stored ACL user (new reference), NULL when there is none (err set
 * only when the store failed). */
json_t *vd_inst_user_load(struct vd_ctx *ctx, const char *id, const char *name, struct vd_error *err);

/* Every user's rendered line, as an object username -> line (new
 * reference); lines missing for records (a store written before lines
 * were kept) are rendered and stored first. */
json_t *vd_inst_lines_load(struct vd_ctx *ctx, const char *id, struct vd_error *err);

/* The stored ACL users of an instance as a JSON array (new reference). */
json_t *vd_inst_users_load(struct vd_ctx *ctx, const char *id, struct vd_error *err);

/* Opens the sealed admin password of a record into out. */
int vd_inst_admin_password(struct vd_ctx *ctx, const json_t *rec, char *out, size_t outsz,
    struct vd_error *err);

/* Renders valkey.conf and users.acl from spec and users and writes both. */
int vd_inst_render_and_write(struct vd_ctx *ctx, const char *id, const json_t *spec,
    const json_t *users, const char *admin_pw, const struct vd_instance_paths *p,
    struct vd_error *err);

/* Connects to the running instance as Valdock's admin user (container
 * address when known, else the published port). */
redisContext *vd_inst_connect_admin(const json_t *rec, const json_t *spec, const char *admin_pw,
    struct vd_error *err);

/* How a change reaches an instance in state: 1 loaded into the running
 * server, 0 written for the next start (stopped, missing, error), or -1
 * with a 503 when neither is safe (paused, restarting, being created). */
int vd_inst_change_mode(const json_t *rec, struct vd_error *err);

/* Remembers the commands a running server knows (COMMAND LIST) in the
 * store set valkey:commands, so rules for stopped instances can be checked
 * against them; best effort. */
void vd_inst_learn_commands(struct vd_ctx *ctx, redisContext *c);

/* 1 when the store knows the server's commands and cmd is not one of them. */
int vd_inst_unknown_command(struct vd_ctx *ctx, const char *cmd);

/* 1 while the housekeeper reaches Docker (and so states are current). */
int vd_inst_docker_known(struct vd_ctx *ctx);

void vd_inst_now_str(char *out, size_t outsz);

/* The current instances:version (0 when never bumped), -1 on error. */
long long vd_inst_version(struct vd_ctx *ctx, struct vd_error *err);

/* A template by name (new reference): a built-in, else from the store;
 * NULL with 404 template_not_found. */
json_t *vd_inst_template_load(struct vd_ctx *ctx, const char *name, struct vd_error *err);

#endif
