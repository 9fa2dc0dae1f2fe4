/*
 * cmd-table.h — the command table shared by switchctl (parsing, help, "did you
 * mean") and switchd (argument checks, permissions).  The daemon's exec
 * functions are bound to these names in cmd.c.
 */
#ifndef SWITCHD_CMD_TABLE_H
#define SWITCHD_CMD_TABLE_H

#define CMD_ADMIN	0x01	/* needs uid 0, the daemon's uid or admin_group */
#define CMD_EXCLUSIVE	0x02	/* one at a time: a second one gets "busy" */
#define CMD_LOCKABLE	0x04	/* refused with "locked" while the deploy lock is held */

enum opt_type { OPT_BOOL, OPT_STR, OPT_INT };

struct cmd_opt {
	char		 sopt;		/* 0 if none */
	const char	*lopt;
	const char	*key;		/* JSON key in "args" */
	enum opt_type	 type;
	const char	*metavar;
	const char	*help;
};

#define CMD_MAXOPTS	6

struct cmd_info {
	const char	*name;
	const char	*usage;		/* after the command name */
	const char	*summary;
	int		 flags;
	const char	*positional;	/* key of the one positional argument, or NULL */
	const char *const *choices;	/* allowed values of the positional */
	struct cmd_opt	 opts[CMD_MAXOPTS];
};

extern const struct cmd_info cmd_infos[];
const struct cmd_info	*cmd_info_find(const char *name);
const char		*cmd_info_suggest(const char *name);	/* closest name, or NULL */
const struct cmd_opt	*cmd_opt_find(const struct cmd_info *, const char *key);
#endif
