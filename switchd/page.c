/*
 * page.c — the status page, switchd/page.html, embedded in the binary so
 * that switchd serves every asset itself and nothing is installed beside
 * it.  The assembler's .incbin reads the file at build time; the Makefile
 * rebuilds this object when page.html changes.
 */
#include "httpd.h"

__asm__(".section .rodata\n"
	".global page_html\n"
	".type page_html, @object\n"
	"page_html:\n"
	".incbin \"switchd/page.html\"\n"
	".byte 0\n"
	".size page_html, . - page_html\n"
	".previous\n");
