package httpapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/sunpath/sunpath/internal/auth"
	"github.com/sunpath/sunpath/internal/problem"
)

type passwordRequest struct {
	CurrentPassword string `json:"current_password" required:"true" description:"the password you signed in with"`
	NewPassword     string `json:"new_password" required:"true" minLength:"12" maxLength:"256" description:"12 to 256 characters, not the current one"`
}

// requirePerson admits only people signed in with a session (scopeSelf):
// an API key has no password of its own to change.
func (s *Server) requirePerson(c *gin.Context) {
	if p, _ := principal(c); p.Kind != auth.KindUser {
		s.fail(c, fmt.Errorf("only a person signed in with a session may do this: %w", errForbidden))
		return
	}
	c.Next()
}

// changePassword replaces the caller's own password (auth.Service.ChangePassword)
// and ends the caller's other sessions; this one stays. The audit trail
// records the attempt with its outcome.
func (s *Server) changePassword(c *gin.Context) {
	var req passwordRequest
	if err := decodeJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	inv := &problem.Invalid{}
	if req.CurrentPassword == "" {
		inv.Add("current_password", "required")
	}
	if req.NewPassword == "" {
		inv.Add("new_password", "required")
	}
	if err := inv.Err(); err != nil {
		s.fail(c, err)
		return
	}
	p, _ := principal(c)
	token, _ := c.Cookie(sessionCookie)
	err := s.deps.Auth.ChangePassword(c.Request.Context(), p, token, req.CurrentPassword, req.NewPassword)
	switch {
	case errors.Is(err, auth.ErrWrongPassword):
		err = fieldError("current_password", "is not your current password")
	case errors.Is(err, auth.ErrPasswordLength):
		err = fieldError("new_password", fmt.Sprintf("must be %d to %d characters", auth.MinPasswordLength, auth.MaxPasswordLength))
	case errors.Is(err, auth.ErrPasswordUnchanged):
		err = fieldError("new_password", "must differ from the current password")
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Status(http.StatusNoContent)
}
