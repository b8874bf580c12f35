"""Messages before they leave, and the record of every message afterwards.

- `selection`: which clients a send goes to (a directory selection as SQL) and
  the counts the wizard shows about it.
- `generate`: one rendered, validated message per recipient of a bulk send, and
  the review's reads of the batch.
- `editor`: THE one editor of a generated message or a draft, and its
  re-validation.
- `compose`: one message for one client (client detail, CLI), and drafts.
- `testsend`: test messages to an address a person types.
- `history`: the Communication list and its filters, one client's history, the
  Home page's figures.

Other code imports these modules (`from comms.messages import history`); the
package itself re-exports nothing.
"""
