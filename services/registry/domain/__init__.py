"""Registry rules, free of I/O: SDP submissions (sdp), e-KTP captures (ektp), the codes they answer with."""
