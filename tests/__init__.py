"""rlfactory's test suite: a package, so that test modules are imported by their full name
(``tests.verl.test_compat``) and two folders may hold files of the same name. Layout: CONTRIBUTING.md."""
