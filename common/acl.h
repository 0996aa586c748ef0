/* acl: Valkey ACL users as Valdock keeps them, and the ACL file rendered
 * from them. A user record is a JSON object:
 *   {"username","enabled":bool,"nopass":bool,"password_hashes":[hex...],
 *    "keys":[...],"channels":[...],"permissions":[...],"created_at","updated_at"}
 * Passwords exist only as lowercase SHA-256 hex (the `#<hash>` form). The
 * file has no comments (the ACL file allows none), one line per user, users
 * in name order, `default` always explicit and the Valdock admin user
 * second (field cases C01-C04). */
#ifndef VD_ACL_H
#define VD_ACL_H

#include <jansson.h>

#include "error.h"

#define VD_ACL_ADMIN_USER "valdock"
#define VD_ACL_NAME_MAX 64
#define VD_ACL_PASSWORD_MAX 512
#define VD_ACL_MAX_USERS 50000
#define VD_ACL_MAX_PASSWORDS 8
#define VD_ACL_MAX_RULES 256
#define VD_ACL_PATTERN_MAX 512
#define VD_ACL_REQUEST_MAX_BODY (64 * 1024)

enum vd_acl_field { VD_ACL_PERMISSIONS, VD_ACL_KEYS, VD_ACL_CHANNELS };

/* Usernames: 1-64 of letters, digits and . _ - @ +, starting with a letter
 * or digit; never Valdock's admin user nor `default`. 422 naming field. */
int vd_acl_check_username(const char *field, const char *name, struct vd_error *err);

/* Passwords: min_len to 512 bytes of UTF-8 without control characters. */
int vd_acl_check_password(const char *field, const char *password, int min_len,
    struct vd_error *err);

/* 1 for a lowercase 64-hex SHA-256. */
int vd_acl_is_hash(const char *s);

/* Parses one rule field, given as a space-separated string or an array of
 * strings, into a new array of tokens. Each token is checked for exactly
 * its field: keys take ~pattern, %R~/%W~/%RW~pattern, allkeys; channels
 * &pattern, allchannels; permissions +/-command, +/-@category,
 * +/-command|sub, allcommands, nocommands and "(...)" selectors of those.
 * Passwords (>x <x #h !h), nopass, on/off and resets are refused
 * everywhere. 422 naming field and the token. */
int vd_acl_parse_rules(enum vd_acl_field kind, const char *field, const json_t *value, json_t **out,
    struct vd_error *err);

/* Builds a new user record from a request object {"username", "password"
 * or "passwords", "nopass", "permissions", "keys", "channels", "enabled"}.
 * With full_access_default, a user given no rules at all gets +@all ~* &*
 * (users named at instance creation); otherwise permissions and keys are
 * required. Field names in errors get prefix (e.g. "users[0]."). */
int vd_acl_user_from_request(const json_t *body, int min_len, int full_access_default,
    long long now, const char *prefix, json_t **out, struct vd_error *err);

/* Applies a change {"password" (replaces all), "add_password",
 * "remove_password", "nopass", "permissions", "keys", "channels",
 * "enabled"} to user; on error user is unchanged. *end_sessions is set when
 * open sessions of the user must be closed (a password went, or the user
 * was disabled). */
int vd_acl_user_update(json_t *user, const json_t *body, int min_len, long long now,
    int *end_sessions, struct vd_error *err);

/* New reference: what the API shows of a user; never a hash. */
json_t *vd_acl_user_view(const json_t *user);

/* Renders the ACL file from the user records (a JSON array) and the admin
 * user's password hash into a new string the caller frees. Refuses (and
 * says why) a duplicate user, a malformed hash or name. */
int vd_acl_render(const json_t *users, const char *admin_hash, char **out, struct vd_error *err);

/* One user's line of the file ("user NAME on #... ~... &... +..."), without
 * a newline, into a new string. */
int vd_acl_user_line(const json_t *user, char **out, struct vd_error *err);

/* The file from lines made by vd_acl_user_line, in any order: default and
 * the admin user first, then the users by name; a duplicate is refused.
 * Keeping each user's line lets a change to one user of thousands render
 * the file without reading every record. */
int vd_acl_render_lines(const char **lines, size_t n, const char *admin_hash, char **out,
    struct vd_error *err);

#endif
