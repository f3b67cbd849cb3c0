"""Registry: the front door for UPT submissions and Dukcapil packets."""
